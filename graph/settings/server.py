"""The settings of the API process (`ServerSettings`): readiness probes, who may call
(local mode, API keys, JWTs), allowed hosts and origins, rate limits and connection
caps, and how it listens (bind address, trusted proxies, HTTP deadlines)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from graph.settings.fields import comma_separated, count


class ServerSettings(BaseModel):
    """How the API serves and whom (environment variables of the same name in upper
    case; lists are comma-separated or JSON)."""

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
    max_queued_per_principal: int = count(
        10,
        10_000,
        "tasks one principal may have waiting to start (PENDING); one more submission is "
        "RATE_LIMITED, so one caller cannot fill the shared queue",
    )
    rate_limit_auth_failures: str = Field(
        "20/minute",
        description="unknown or revoked API keys one client address may send, in `limits` "
        "notation; past it its keys not already known are refused without a database "
        "read (UNAUTHENTICATED with retryAfter)",
    )
    ws_max_connections_per_principal: int = count(
        20, 10_000, "WebSocket connections one principal may hold open per API process"
    )
    ws_max_connections_local: int = count(
        200,
        10_000,
        "WebSocket connections the local principal (local and disabled modes: one person "
        "on this machine, or everyone behind a gateway) may hold open per API process; a "
        "dashboard with many tabs, or a script following 50 tasks",
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
        return comma_separated(value)

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

    @property
    def jwt_enabled(self) -> bool:
        """Whether JWTs are accepted (JWT_ISSUER and, checked by `Settings`, a key are
        set)."""
        return bool(self.jwt_issuer)
