"""OpenTelemetry tracing, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: one SDK
`TracerProvider` per process (resource `service.name` = `OTEL_SERVICE_NAME`) whose
spans a `BatchSpanProcessor` sends over OTLP/HTTP to `<endpoint>/v1/traces`; the API's
HTTP and WebSocket requests traced by the FastAPI instrumentation, GraphQL operations
by Strawberry's `OpenTelemetryExtension`, and each task's run, teams, agents and model
calls by the agents' observer (`agents.telemetry.runs`, through the tracer seam
`agents.telemetry.tracing`), in the API's process and in `postassist worker`.

Off (the default) it costs nothing: this module imports OpenTelemetry only inside its
functions, and they are only called with tracing on. The exporter's other standard
variables (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`) are read by
the exporter itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from agents.telemetry import tracing as agent_tracing
from graph.settings import Settings

#: Paths not traced: the probes and the scrapes, polled every few seconds.
UNTRACED_PATHS = "/healthz$,/readyz$,/metrics$"  # regexes searched in the URL: anchored

_provider: Any = None


def setup_tracing(settings: Settings, *, exporter: Any = None) -> Any:
    """The process's `TracerProvider` (made on the first call, registered as the global
    one and installed as the agents' tracer), or None when tracing is off. `exporter`
    replaces the OTLP exporter on that first call (a test's in-memory one)."""
    global _provider
    if not settings.tracing_enabled:
        return None
    if _provider is None:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=f"{settings.otel_exporter_otlp_endpoint}/v1/traces"
            )
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.otel_service_name})
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # once per process; libraries' spans go there too
        _provider = provider
        agent_tracing.use_tracer(provider.get_tracer("postassist.agents"))
    return _provider


def shutdown_tracing() -> None:
    """Export what is buffered and stop (the agents' tracer is off again); the next
    `setup_tracing` makes a new provider."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
        agent_tracing.use_tracer(None)


def instrument_app(app: FastAPI, provider: Any) -> None:
    """Trace `app`'s requests with `provider` (FastAPI instrumentation; no spans for the
    WebSocket's every message, none for `UNTRACED_PATHS`)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )


def graphql_extension(provider: Any) -> Any:
    """Strawberry's `OpenTelemetryExtension` on `provider`, keeping no argument values
    (inputs carry papers and posts; spans name the fields only)."""
    from functools import partial

    from strawberry.extensions.tracing import OpenTelemetryExtension

    return partial(OpenTelemetryExtension, tracer_provider=provider, arg_filter=_no_args)


def _no_args(_args: dict[str, Any], _info: Any) -> dict[str, Any]:
    return {}
