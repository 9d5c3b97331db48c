"""The settings of what operators see (`OperationsSettings`): the log format, the
Prometheus metrics endpoint (and its multiprocess directory), and OpenTelemetry tracing;
`graph.telemetry` applies them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


class OperationsSettings(BaseModel):
    """Logs, metrics and traces (environment variables of the same name in upper case;
    the `OTEL_*` ones are OpenTelemetry's standard names)."""

    log_format: Literal["json", "console"] | None = Field(
        None,
        description="json: one JSON object per line; console: coloured, aligned lines for "
        "people; unset: console when stderr is a terminal, json otherwise",
    )
    metrics_enabled: bool = Field(
        True,
        description="serve Prometheus metrics at /metrics (aggregate numbers only: no ids, "
        "no text); false: /metrics answers 404",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="when set, /metrics wants `Authorization: Bearer <token>` (Prometheus "
        "`authorization.credentials`); unset: open, like /healthz, for a private port",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        description="prometheus-client's multiprocess directory: every process of this "
        "host (`serve`, `worker`) writes its metrics there and /metrics adds them up; an "
        "existing, empty directory at start, the same for all processes",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector base URL (http://collector:4318); spans go to "
        "<endpoint>/v1/traces; unset: no tracing and no OpenTelemetry import",
    )
    otel_service_name: str = Field(
        "postassist", min_length=1, description="the `service.name` of the spans' resource"
    )

    @field_validator("prometheus_multiproc_dir")
    @classmethod
    def _is_directory(cls, value: Path | None) -> Path | None:
        """An existing directory: prometheus-client would fail at the first metric."""
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory (create it, empty, before start)")
        return value

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """An http(s) URL (blank: unset); the trailing `/` dropped."""
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL (OTLP/HTTP)")
        return value

    @property
    def tracing_enabled(self) -> bool:
        """Whether spans are made and exported (`OTEL_EXPORTER_OTLP_ENDPOINT` is set)."""
        return self.otel_exporter_otlp_endpoint is not None
