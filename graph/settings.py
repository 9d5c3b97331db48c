"""Settings: the only module that reads the environment (and an optional `.env` file)."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agents.llm.chat import ModelConfig
from agents.llm.local_server import LOCAL_MODEL_ALIAS
from agents.runtime.worker import WorkerConfig, default_worker_id
from agents.teams.sources import ARXIV_API_URL, SourcesConfig
from agents.teams.sources import DEFAULT_TIMEOUT as DEFAULT_SOURCES_TIMEOUT


class Settings(BaseSettings):
    """Every setting of the service, read from environment variables of the same name
    in upper case (`DATABASE_URL`, `LLM_PROVIDER`, ...). The README lists them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./postassist.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or "
        "postgresql+asyncpg://user@host/db",
    )
    db_pool_timeout_seconds: float = Field(
        5.0, gt=0, description="API wait for a database connection before SERVICE_UNAVAILABLE"
    )
    broadcast_url: str = Field(
        "memory://", description="broadcaster URL: memory://, redis://host:6379, postgres://..."
    )
    llm_provider: Literal["local", "openai"] = Field(
        "local", description="local: bundled SmolLM2 via llama.cpp; openai: any OpenAI-compatible"
    )
    openai_api_key: str | None = Field(None, description="key for LLM_PROVIDER=openai")
    openai_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint root ending in /v1 (vLLM, Ollama, ...)"
    )
    llm_model: str | None = Field(
        None, description="model name; default gpt-4o-mini (openai) or the bundled SmolLM2"
    )
    llm_temperature: float = Field(0.3, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(512, ge=16, le=32768, description="output-token cap per call")
    llm_timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="per LLM call once it is sent; default 120 (local: measured, see "
        "benchmarks.model_speed; openai)",
    )
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_concurrent_calls: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="LLM calls in flight at once per worker process (openai; None: no "
        "limit); the bundled server always gets 1",
    )
    model_unavailable_after_seconds: float = Field(
        300.0,
        gt=0,
        description="how long the model may stay unreachable while tasks wait for it "
        "before they fail with MODEL_UNAVAILABLE",
    )
    local_model_path: str | None = Field(
        None, description="a GGUF to serve instead of the bundled SmolLM2-135M-Instruct"
    )
    local_model_context: int = Field(4096, ge=512, description="llama.cpp n_ctx, tokens")
    local_model_startup_seconds: float = Field(120.0, gt=0)
    local_model_max_restarts: int = Field(
        3, ge=0, le=100, description="restarts in a row of a bundled server that died"
    )
    max_concurrent_generations: int = Field(
        3, ge=1, le=1000, description="tasks running at once across all workers"
    )
    worker_concurrency: int | None = Field(
        None,
        ge=1,
        le=64,
        description="tasks one worker runs at once; default min(3, MAX_CONCURRENT_GENERATIONS)",
    )
    worker_id: str | None = Field(
        None, max_length=200, description="this worker's id; default <host name>-<pid>"
    )
    worker_dead_after_seconds: float = Field(
        30.0, gt=0, description="silence after which another worker takes a worker's tasks"
    )
    heartbeat_seconds: float | None = Field(
        None,
        gt=0,
        description="between worker heartbeats; default min(2, WORKER_DEAD_AFTER_SECONDS / 3)",
    )
    queue_poll_seconds: float = Field(0.1, gt=0, description="between DBOS queue polls")
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="for running tasks to finish when a worker stops"
    )
    run_worker: bool = Field(True, description="false: API only (postassist serve --no-worker)")
    max_revisions: int = Field(2, ge=0, le=5, description="verification round-trips per post")
    sources_enabled: bool = Field(
        True,
        description="false: research fetches nothing (no arXiv, no web search) and its notes "
        "rest on the request alone",
    )
    arxiv_api_url: str = Field(
        ARXIV_API_URL,
        pattern=r"^https?://\S+$",
        description="arXiv API root; a title that is an arXiv id or link is fetched from "
        "GET {ARXIV_API_URL}/query?id_list=<id>",
    )
    tavily_api_key: SecretStr | None = Field(
        None, description="web search through Tavily (needs the `sources` extra); none: off"
    )
    tavily_api_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Tavily API root (default Tavily's own)"
    )
    sources_timeout_seconds: float = Field(
        DEFAULT_SOURCES_TIMEOUT, gt=0, le=120, description="per source request (arXiv, Tavily)"
    )
    generation_timeout_seconds: float = Field(900.0, gt=0, description="per task")
    follow_poll_seconds: float = Field(
        5.0, gt=0, description="subscription re-read interval if a bus notice is lost"
    )
    max_query_depth: int = Field(
        10,
        ge=2,
        le=100,
        description="deepest field nesting of an operation (introspection: "
        "MAX_INTROSPECTION_DEPTH)",
    )
    max_query_aliases: int = Field(30, ge=1, le=10_000, description="aliases per document")
    max_query_chars: int = Field(
        32_768,
        ge=1_024,
        le=10_000_000,
        description="characters per document, checked before parsing: lexing 256 KiB took "
        "~75 ms of the event loop; GraphiQL's introspection query has ~2,000",
    )
    max_query_tokens: int = Field(
        2000, ge=100, le=1_000_000, description="lexical tokens per document; parsing stops past it"
    )
    max_query_cost: int = Field(
        20_000,
        ge=100,
        description="estimated fields resolved per operation: list fields multiply their "
        "children by `first` (connections) or 10 (other lists)",
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, description="HTTP request body cap in bytes; larger bodies get HTTP 413"
    )
    graphql_introspection: bool = Field(
        True, description="false in production: no __schema/__type queries and no GraphiQL"
    )
    graphql_introspection_with_auth: bool = Field(
        False,
        description="true: answer __schema/__type when callers authenticate (a key or "
        "JWTs exist, or AUTH_DISABLED behind a gateway); false: only in local mode",
    )
    max_introspection_fields: int = Field(
        2,
        ge=1,
        le=100,
        description="__schema and __type fields per document (GraphiQL sends one __schema)",
    )
    max_introspection_depth: int = Field(
        15,
        ge=2,
        le=100,
        description="deepest nesting under __schema or __type, in fields, itself included "
        "(GraphiQL's introspection query is 15 deep: nine levels of ofType)",
    )
    graphql_field_suggestions: bool = Field(
        True, description='false in production: no "Did you mean ...?" in validation errors'
    )
    ws_init_timeout_seconds: float = Field(
        3.0, gt=0, description="WebSocket close (4408) when no connection_init arrives in time"
    )
    ws_max_subscriptions: int = Field(
        10, ge=1, le=1000, description="operations one WebSocket connection may run at once"
    )
    # 256 KiB, as MAX_BODY_BYTES: a WebSocket message carries what an HTTP body would
    # (uvicorn's own default, 16 MiB, let one message stall the server for seconds).
    ws_max_size: int = Field(
        262_144,
        ge=1024,
        le=16 * 1024 * 1024,
        description="largest WebSocket message, in bytes (uvicorn's ws_max_size, after "
        "decompression); a larger one closes the connection with 1009",
    )
    # 16 KiB, h11's cap on a request head: credentials that fit in an HTTP header fit.
    ws_init_max_size: int = Field(
        16_384,
        ge=1024,
        description="largest WebSocket message before connection_ack (connection_init "
        "with its credentials), in bytes, at most WS_MAX_SIZE; larger closes with 1009 "
        "before authentication",
    )
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, description="per readiness probe (database, bus, model endpoint)"
    )
    readiness_cache_seconds: float = Field(
        5.0, ge=0, description="how long a model-endpoint probe result is reused"
    )
    auth_disabled: bool = Field(
        False,
        description="true: no authentication even on a non-loopback bind (every caller is "
        "the one local principal); only behind a gateway that authenticates",
    )
    auth_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="how long a checked API key is trusted before it is read again "
        "(a revoked key stops working within this time)",
    )
    jwt_issuer: str | None = Field(None, description="JWTs are accepted when set: their `iss`")
    jwt_audience: str | None = Field(None, description="the `aud` JWTs must carry")
    jwt_secret: SecretStr | None = Field(None, description="HS256 shared secret for JWTs")
    jwt_public_key_file: Path | None = Field(
        None, description="PEM public key for RS256/ES256 JWTs"
    )
    jwt_jwks_file: Path | None = Field(
        None, description="JWKS JSON file for RS256/ES256 JWTs (the key is chosen by `kid`)"
    )
    jwt_admin_scope: str = Field(
        "postassist:admin",
        description="a JWT whose `scope`/`scp` holds this scope is an admin principal",
    )
    jwt_leeway_seconds: float = Field(30.0, ge=0, description="clock skew allowed on exp/nbf")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        ["localhost", "127.0.0.1", "[::1]"],
        description="Host header values accepted (comma-separated; `*` for any, "
        "`*.example.com` for subdomains); others get HTTP 400",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="browser origins allowed to call the API over HTTP and WebSocket "
        "(comma-separated, e.g. https://app.example.com); same-origin pages always may",
    )
    rate_limit_mutations: str = Field(
        "60/minute",
        description="mutations one principal may run, in `limits` notation "
        '("60/minute", "10/second;500/hour"); counted in Redis when BROADCAST_URL is Redis',
    )
    max_queued_per_principal: int = Field(
        10,
        ge=1,
        le=10_000,
        description="tasks one principal may have waiting to start (PENDING); one more "
        "submission is RATE_LIMITED, so one caller cannot fill the shared queue",
    )
    rate_limit_auth_failures: str = Field(
        "20/minute",
        description="unknown or revoked API keys one client address may send, in `limits` "
        "notation; past it its keys not already known are refused without a database "
        "read (UNAUTHENTICATED with retryAfter)",
    )
    ws_max_connections_per_principal: int = Field(
        20,
        ge=1,
        le=10_000,
        description="WebSocket connections one principal may hold open per API process",
    )
    ws_max_connections_local: int = Field(
        200,
        ge=1,
        le=10_000,
        description="WebSocket connections the local principal (local and disabled modes: "
        "one person on this machine, or everyone behind a gateway) may hold open per API "
        "process; a dashboard with many tabs, or a script following 50 tasks",
    )
    db_statement_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL statement_timeout of API queries",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "info"
    # Empty, unlike uvicorn (which trusts 127.0.0.1 and ::1 unless FORWARDED_ALLOW_IPS
    # says otherwise): a header any local process can send is no proof of a client.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        [],
        description="proxies whose X-Forwarded-For and X-Forwarded-Proto are believed "
        "(comma-separated addresses or networks, `*` for any); empty: none, the peer's "
        "address is the client's",
    )
    # A request head is under 2 KB: a second on the slowest mobile link. Apache's
    # mod_reqtimeout allows 20 s by default, nginx's client_header_timeout 60 s.
    http_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="from a connection's opening (on a kept-alive one, from the first "
        "byte after a response) to the end of a request head; past it, HTTP 408 and the "
        "connection is closed",
    )
    # MAX_BODY_BYTES (256 KiB) in 30 s is 8.7 KB/s, a slow 3G link; unlike nginx's
    # client_body_timeout (between two reads) it bounds the whole body.
    http_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="from the end of a request head to the end of its body; past it, "
        "HTTP 408 REQUEST_TIMEOUT and the connection is closed",
    )

    @field_validator("allowed_hosts", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """Accept `a,b,c` (and a JSON list) from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        """Each entry an IP address, a network (`10.0.0.0/8`) or `*`: uvicorn would take
        a typo for a name and silently trust no proxy."""
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Settings that contradict each other are refused here, naming both variables
        and the fix, before anything starts (`SETTING_CONFLICTS`)."""
        problems = [problem for check in SETTING_CONFLICTS if (problem := check(self))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _jwt_complete(self) -> Settings:
        """JWT_ISSUER and a key come together: one without the other is a mistake that
        would otherwise silently refuse every JWT."""
        keys = (self.jwt_secret, self.jwt_public_key_file, self.jwt_jwks_file)
        if bool(self.jwt_issuer) != any(keys):
            raise ValueError(
                "JWTs need JWT_ISSUER and one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE"
            )
        return self

    @property
    def jwt_enabled(self) -> bool:
        """Whether JWTs are accepted (JWT_ISSUER and, checked above, a key are set)."""
        return bool(self.jwt_issuer)

    @property
    def resolved_model(self) -> str:
        """The model name to send: `llm_model`, or the provider's default."""
        if self.llm_model:
            return self.llm_model
        return "gpt-4o-mini" if self.llm_provider == "openai" else LOCAL_MODEL_ALIAS

    @property
    def effective_worker_concurrency(self) -> int:
        """`WORKER_CONCURRENCY`, or min(3, `MAX_CONCURRENT_GENERATIONS`): DBOS refuses a
        worker limit above the global one."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        return min(DEFAULT_WORKER_CONCURRENCY, self.max_concurrent_generations)

    @property
    def effective_heartbeat_seconds(self) -> float:
        """`HEARTBEAT_SECONDS`, or min(2, a third of `WORKER_DEAD_AFTER_SECONDS`)."""
        if self.heartbeat_seconds is not None:
            return self.heartbeat_seconds
        return min(DEFAULT_HEARTBEAT_SECONDS, self.worker_dead_after_seconds / HEARTBEATS_PER_DEATH)

    def worker_config(self) -> WorkerConfig:
        """How this process runs tasks when it is a worker."""
        return WorkerConfig(
            database_url=self.database_url,
            worker_id=self.worker_id or default_worker_id(),
            worker_concurrency=self.effective_worker_concurrency,
            global_concurrency=self.max_concurrent_generations,
            dead_after=self.worker_dead_after_seconds,
            heartbeat=self.effective_heartbeat_seconds,
            queue_poll=self.queue_poll_seconds,
            shutdown_grace=self.shutdown_grace_seconds,
            max_revisions=self.max_revisions,
            timeout=self.generation_timeout_seconds,
            sources=self.sources_config(),
        )

    def sources_config(self) -> SourcesConfig:
        """Where research fetches real sources (see the README's "Sources")."""
        key = self.tavily_api_key.get_secret_value() if self.tavily_api_key else None
        return SourcesConfig(
            enabled=self.sources_enabled,
            arxiv_api_url=self.arxiv_api_url,
            tavily_api_key=key or None,
            tavily_api_url=self.tavily_api_url,
            timeout=self.sources_timeout_seconds,
        )

    def llm_config(self) -> ModelConfig:
        """How to reach the configured chat model."""
        return ModelConfig(
            provider=self.llm_provider,
            model=self.resolved_model,
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            temperature=self.llm_temperature,
            max_tokens=self.llm_max_tokens,
            timeout=self.llm_timeout_seconds,
            max_retries=self.llm_max_retries,
            max_concurrent_calls=self.llm_max_concurrent_calls,
            unavailable_after=self.model_unavailable_after_seconds,
            local_model_path=Path(self.local_model_path) if self.local_model_path else None,
            local_context=self.local_model_context,
            local_startup_seconds=self.local_model_startup_seconds,
            local_max_restarts=self.local_model_max_restarts,
        )


#: `WORKER_CONCURRENCY` when unset (capped by `MAX_CONCURRENT_GENERATIONS`).
DEFAULT_WORKER_CONCURRENCY = 3
#: `HEARTBEAT_SECONDS` when unset (capped at a third of `WORKER_DEAD_AFTER_SECONDS`).
DEFAULT_HEARTBEAT_SECONDS = 2.0
#: Heartbeats a live worker gets in before it is taken for dead: one late or lost beat
#: (a busy event loop, a slow database) must not hand a live worker's tasks to another.
HEARTBEATS_PER_DEATH = 3


def _worker_over_global(s: Settings) -> str | None:
    if s.worker_concurrency is not None and s.worker_concurrency > s.max_concurrent_generations:
        return (
            f"WORKER_CONCURRENCY={s.worker_concurrency} is more than "
            f"MAX_CONCURRENT_GENERATIONS={s.max_concurrent_generations} (a worker cannot run "
            "more tasks than all workers together): lower WORKER_CONCURRENCY or unset it "
            "(it defaults to min(3, MAX_CONCURRENT_GENERATIONS))"
        )
    return None


def _heartbeat_over_takeover(s: Settings) -> str | None:
    limit = s.worker_dead_after_seconds / HEARTBEATS_PER_DEATH
    if s.heartbeat_seconds is not None and s.heartbeat_seconds > limit:
        return (
            f"HEARTBEAT_SECONDS={s.heartbeat_seconds:g} is more than a third of "
            f"WORKER_DEAD_AFTER_SECONDS={s.worker_dead_after_seconds:g} (a live worker would "
            f"be taken for dead after one late beat): set HEARTBEAT_SECONDS <= {limit:g}, "
            "raise WORKER_DEAD_AFTER_SECONDS, or unset HEARTBEAT_SECONDS"
        )
    return None


def _poll_over_takeover(s: Settings) -> str | None:
    if s.queue_poll_seconds >= s.worker_dead_after_seconds:
        return (
            f"QUEUE_POLL_SECONDS={s.queue_poll_seconds:g} is not below "
            f"WORKER_DEAD_AFTER_SECONDS={s.worker_dead_after_seconds:g} (tasks taken over "
            "from a dead worker would wait longer than the takeover itself): lower "
            "QUEUE_POLL_SECONDS"
        )
    return None


def _call_over_generation(s: Settings) -> str | None:
    call = s.llm_config().call_timeout
    if call >= s.generation_timeout_seconds:
        name = "LLM_TIMEOUT_SECONDS" if s.llm_timeout_seconds else "the default LLM_TIMEOUT_SECONDS"
        return (
            f"{name}={call:g} is not below GENERATION_TIMEOUT_SECONDS="
            f"{s.generation_timeout_seconds:g} (one model call could use up a whole run): "
            "lower LLM_TIMEOUT_SECONDS or raise GENERATION_TIMEOUT_SECONDS"
        )
    return None


def _tokens_over_context(s: Settings) -> str | None:
    if s.llm_provider == "local" and s.llm_max_tokens >= s.local_model_context:
        return (
            f"LLM_MAX_TOKENS={s.llm_max_tokens} does not fit in LOCAL_MODEL_CONTEXT="
            f"{s.local_model_context} (the prompt needs room too): lower LLM_MAX_TOKENS or "
            "raise LOCAL_MODEL_CONTEXT"
        )
    return None


def _rate_limit_parses(s: Settings) -> str | None:
    for name, rates in (
        ("RATE_LIMIT_MUTATIONS", s.rate_limit_mutations),
        ("RATE_LIMIT_AUTH_FAILURES", s.rate_limit_auth_failures),
    ):
        try:
            parse_many(rates)
        except ValueError:
            return (
                f"{name}={rates!r} is not a rate in `limits` notation: use e.g. "
                '"60/minute" or "10/second;500/hour"'
            )
    return None


def _wildcard_origin_without_auth(s: Settings) -> str | None:
    if "*" in s.cors_origins and not (s.jwt_enabled or s.auth_disabled):
        return (
            "CORS_ORIGINS=* lets every web page call the API, and without JWT_ISSUER or "
            "AUTH_DISABLED this server may run in local mode (no API key yet), where such "
            "a page would act as the local admin: list the origins instead "
            "(CORS_ORIGINS=https://app.example.com,http://localhost:3000)"
        )
    return None


#: Each check returns why two or more settings contradict each other, or None.
SETTING_CONFLICTS = (
    _worker_over_global,
    _heartbeat_over_takeover,
    _poll_over_takeover,
    _call_over_generation,
    _tokens_over_context,
    _rate_limit_parses,
    _wildcard_origin_without_auth,
)


class SettingsError(ValueError):
    """The environment's settings are not valid; the message lists each problem with
    the variable it names, one per line."""


def get_settings() -> Settings:
    """Return the process-wide `Settings` (read once). Raises `SettingsError` naming
    every setting that is wrong, and the fix."""
    try:
        return _read_settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


@lru_cache
def _read_settings() -> Settings:
    return Settings()


get_settings.cache_clear = _read_settings.cache_clear  # type: ignore[attr-defined]


def describe(error: ValidationError) -> str:
    """One line per problem of `error`: `VARIABLE: message` (the variable in upper case,
    as the environment spells it; a check across settings names its own)."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]).upper()
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "\n".join(lines)
