"""The FastAPI app: GraphQL at /graphql (GraphiQL, both WebSocket protocols), `/healthz`
and `/readyz`, `/metrics` (`graph.telemetry.endpoint`), the HTTP guards (allowed hosts,
CORS, cross-origin refusal, the request body cap), the request id and, when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, the traces of every request; and a lifespan that
owns the engine, the bus, the model (and its monitor), who callers are, the task service
and the worker (`graph.services.open_services`)."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from agents.runtime.execution import ModelFactory
from db import VERSION
from graph.api.context import get_context
from graph.api.schema import build_schema
from graph.errors import UNAUTHENTICATED, UnauthenticatedError, error_body
from graph.health import healthz, readyz
from graph.services import open_services
from graph.settings import Settings, get_settings
from graph.telemetry.endpoint import add_metrics_route, mark_exited, multiprocess_active
from graph.telemetry.request_id import RequestIdMiddleware
from graph.telemetry.tracing import instrument_app, setup_tracing
from graph.transport.ide import add_landing_pages, mount_ide_files
from graph.transport.middleware import (
    BodyLimitMiddleware,
    HostGuard,
    OriginGuard,
    SecurityHeadersMiddleware,
)
from graph.transport.router import PostAssistRouter

logger = logging.getLogger(__name__)

#: Request headers a browser app may send cross-origin: credentials, JSON, the ones
#: Apollo Client adds, an SSE resume's and a request id.
CORS_HEADERS = [
    "authorization",
    "content-type",
    "accept",
    "apollographql-client-name",
    "apollographql-client-version",
    "x-apollo-operation-name",
    "apollo-require-preflight",
    "last-event-id",  # an SSE subscription that resumes (graph.transport.sse)
    "x-request-id",
]


def _freeze_startup_objects() -> None:
    """Move every object alive after start-up (the schema, the agents' graphs, the
    libraries' modules: ~300k objects) out of the garbage collector's reach
    (`gc.freeze`), so a full collection only scans what requests create. Measured with
    `python -m benchmarks.security`: parsing a refused 2,000-token query leaves cyclic
    garbage, and without this every 10-15 refusals paused the whole server ~200-250 ms."""
    gc.collect()
    gc.freeze()


async def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    """HTTP 401 with a GraphQL-shaped body and a Bearer challenge."""
    assert isinstance(exc, UnauthenticatedError)
    logger.info("HTTP 401: %s", exc.message)
    details = {k: v for k, v in (exc.extensions or {}).items() if k != "code"}
    headers = {"WWW-Authenticate": 'Bearer realm="postassist"'}
    if "retryAfter" in details:  # failed keys throttled for this address (RFC 9110 10.2.3)
        headers["Retry-After"] = str(details["retryAfter"])
    return JSONResponse(
        error_body(exc.message, UNAUTHENTICATED, **details), status_code=401, headers=headers
    )


def create_app(
    settings: Settings | None = None, *, model_factory: ModelFactory | None = None
) -> FastAPI:
    """Build the app. `model_factory` replaces the configured model (tests pass a
    scripted chat model); without it, `LLM_PROVIDER` decides, and "local" starts the
    bundled model's server for the app's lifetime."""
    settings = settings or get_settings()
    # No /docs, /redoc or /openapi.json: Swagger and ReDoc load from a CDN and document no
    # GraphQL operation; those paths lead to GraphiQL instead (add_landing_pages).
    app = FastAPI(
        title="PostAssist",
        version=VERSION,
        lifespan=_lifespan(settings, model_factory),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(_graphql_router(settings), prefix="/graphql")
    if settings.graphql_introspection:
        mount_ide_files(app)
    add_landing_pages(app, ide=settings.graphql_introspection)
    app.add_api_route("/healthz", healthz, include_in_schema=False)
    app.add_api_route("/readyz", readyz, include_in_schema=False)
    add_metrics_route(app, settings)
    app.add_exception_handler(UnauthenticatedError, _unauthenticated)
    _add_guards(app, settings)
    # Outermost: every answer, a guard's refusal too, carries its request's X-Request-ID.
    app.add_middleware(RequestIdMiddleware)
    if (provider := setup_tracing(settings)) is not None:
        instrument_app(app, provider)
    return app


def _lifespan(
    settings: Settings, model_factory: ModelFactory | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: the services open (`open_services`), the authentication mode
    decided, the start-up objects frozen; closed in reverse when the app stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, model_factory=model_factory) as services:
            await services.auth.start(settings.host)
            app.state.services = services
            multiprocess_active(settings)  # says so now if the directory is not in use
            _freeze_startup_objects()
            try:
                yield
            finally:
                gc.unfreeze()  # what shuts down now may be collected again
                mark_exited(settings)

    return lifespan


def _graphql_router(settings: Settings) -> PostAssistRouter:
    """The GraphQL router (HTTP and both WebSocket protocols) over the schema."""
    return PostAssistRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphql_introspection else None,
        init_timeout=settings.ws_init_timeout_seconds,
        max_subscriptions=settings.ws_max_subscriptions,
        max_message_bytes=settings.ws_max_size,
        init_max_bytes=settings.ws_init_max_size,
        allowed_origins=settings.cors_origins,  # strawberry's own WebSocket Origin check
    )


def _add_guards(app: FastAPI, settings: Settings) -> None:
    """The HTTP middleware, added innermost first: body cap, cross-origin refusal, CORS
    (answers preflights), Host check, and outermost the security headers."""
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        read_timeout=settings.http_body_timeout_seconds,
    )
    app.add_middleware(OriginGuard, allowed_origins=settings.cors_origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        expose_headers=["x-request-id"],  # a browser app may quote it in a bug report
        max_age=600,
    )
    app.add_middleware(
        HostGuard,
        allowed_hosts=settings.allowed_hosts,
        probe_paths={"/healthz", "/readyz", "/metrics"},  # scraped by address, like probes
    )
    # Outermost: every HTTP answer gets the security headers, the guards' 400/403/413 too.
    app.add_middleware(SecurityHeadersMiddleware)
