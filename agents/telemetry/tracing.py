"""The tracer seam: `graph.telemetry.tracing` installs an OpenTelemetry tracer with
`use_tracer` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without one, `tracer()` is None
and every caller skips its spans (one `is None` test: tracing off costs nothing, and
OpenTelemetry is never imported).

`child_context(span)` is the OpenTelemetry context whose current span is `span`, for a
span started under it explicitly (the run's spans are opened and closed from events,
not with `with`, so they do not rely on asyncio's context following LangGraph's tasks).
"""

from __future__ import annotations

from typing import Any

_tracer: Any = None


def use_tracer(tracer: Any) -> None:
    """Make `tracer` (an `opentelemetry.trace.Tracer`) the agents' tracer; None: off."""
    global _tracer
    _tracer = tracer


def tracer() -> Any:
    """The installed tracer, or None when tracing is off."""
    return _tracer


def child_context(span: Any) -> Any:
    """The OpenTelemetry context with `span` as its current span (None for None: the
    current context). Imports OpenTelemetry, so only called with a tracer installed."""
    if span is None:
        return None
    from opentelemetry import trace

    return trace.set_span_in_context(span)
