"""The settings of how tasks run (`RuntimeSettings`): the database and the bus, the
chat model, the workers and their queue, the real sources research fetches, and the
per-task timeouts; and the configs the agents take from them (`worker_config`,
`llm_config`, `sources_config`, `price_table`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from agents.llm.chat import ModelConfig
from agents.llm.local_server import LOCAL_MODEL_ALIAS
from agents.llm.prices import FREE, PriceTable
from agents.runtime.idempotency import DEFAULT_TTL_HOURS as DEFAULT_IDEMPOTENCY_TTL_HOURS
from agents.runtime.worker import WorkerConfig, default_worker_id
from agents.teams.sources import ARXIV_API_URL, SourcesConfig
from agents.teams.sources import DEFAULT_TIMEOUT as DEFAULT_SOURCES_TIMEOUT
from graph.settings.fields import count

#: `WORKER_CONCURRENCY` when unset (capped by `MAX_CONCURRENT_GENERATIONS`).
DEFAULT_WORKER_CONCURRENCY = 3
#: `HEARTBEAT_SECONDS` when unset (capped at a third of `WORKER_DEAD_AFTER_SECONDS`).
DEFAULT_HEARTBEAT_SECONDS = 2.0
#: Heartbeats a live worker gets in before it is taken for dead: one late or lost beat
#: (a busy event loop, a slow database) must not hand a live worker's tasks to another.
HEARTBEATS_PER_DEATH = 3


class RuntimeSettings(BaseModel):
    """Where the data lives, which model answers, how workers run tasks and what
    research fetches (environment variables of the same name in upper case)."""

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
    llm_max_concurrent_calls: int | None = count(
        None,
        10_000,
        "LLM calls in flight at once per worker process (openai; None: no limit); the "
        "bundled server always gets 1",
    )
    llm_price_input_per_mtok: float | None = Field(
        None,
        ge=0,
        description="USD per million input tokens of LLM_PROVIDER=openai's model; with "
        "LLM_PRICE_OUTPUT_PER_MTOK it prices every call (usage.costUsd); unset: the cost is "
        "unknown (null). The bundled local model always costs 0",
    )
    llm_price_output_per_mtok: float | None = Field(
        None,
        ge=0,
        description="USD per million output tokens (see LLM_PRICE_INPUT_PER_MTOK)",
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
    max_concurrent_generations: int = count(3, 1000, "tasks running at once across all workers")
    worker_concurrency: int | None = count(
        None, 64, "tasks one worker runs at once; default min(3, MAX_CONCURRENT_GENERATIONS)"
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
    review_timeout_hours: float | None = Field(
        None,
        gt=0,
        description="a task AWAITING_REVIEW longer than this fails with REVIEW_TIMEOUT; "
        "none (default): it waits for its reviewer for ever",
    )
    follow_poll_seconds: float = Field(
        5.0, gt=0, description="subscription re-read interval if a bus notice is lost"
    )
    idempotency_ttl_hours: float = Field(
        DEFAULT_IDEMPOTENCY_TTL_HOURS,
        gt=0,
        description="how long a generatePost/generatePosts idempotencyKey names the task(s) "
        "it created; an older key may be used again",
    )

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
            prices=self.price_table(),
            review_timeout=(
                None if self.review_timeout_hours is None else self.review_timeout_hours * 3600
            ),
        )

    def price_table(self) -> PriceTable | None:
        """What a model call costs: `FREE` for the bundled model (it runs here; a price
        table set for another provider does not apply to it), the table of
        `LLM_PRICE_INPUT_PER_MTOK` and `LLM_PRICE_OUTPUT_PER_MTOK` for an OpenAI-compatible
        endpoint, None (unknown) without one. The two come together
        (`conflicts._half_a_price_table`)."""
        if self.llm_provider == "local":
            return FREE
        if self.llm_price_input_per_mtok is None or self.llm_price_output_per_mtok is None:
            return None
        return PriceTable(self.llm_price_input_per_mtok, self.llm_price_output_per_mtok)

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
