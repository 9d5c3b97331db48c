"""The FastAPI app: GraphQL at /graphql (GraphiQL, both WebSocket protocols), `/healthz`
and `/readyz`, the HTTP guards (allowed hosts, CORS, cross-origin refusal, the request
body cap), and a lifespan that owns the engine, the bus, the model (and its monitor),
who callers are, the task service and the worker."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from broadcaster import Broadcast
from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from agents.execution import ModelFactory
from agents.llm import ModelSource, ModelUnavailableError, endpoint_probe, open_model
from agents.tasks import open_task_service
from agents.worker import run_worker
from db import VERSION
from db.bus import broadcast_for
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.migrate import upgrade_to_head
from graph.auth import Authenticator, ConnectionLimiter
from graph.context import Services, get_context
from graph.errors import UNAUTHENTICATED, UnauthenticatedError, error_body
from graph.health import ModelMonitor, healthz, readyz
from graph.ide import add_landing_pages, mount_ide_files
from graph.middleware import BodyLimitMiddleware, HostGuard, OriginGuard, SecurityHeadersMiddleware
from graph.ratelimit import MutationRateLimiter, limiter_storage
from graph.router import PostAssistRouter
from graph.schema import build_schema
from graph.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: Request headers a browser app may send cross-origin: credentials, JSON, and the ones
#: Apollo Client adds.
CORS_HEADERS = [
    "authorization",
    "content-type",
    "accept",
    "apollographql-client-name",
    "apollographql-client-version",
    "x-apollo-operation-name",
    "apollo-require-preflight",
]


def _configured_probe(settings: Settings) -> Any:
    """The endpoint probe of `LLM_PROVIDER=openai`; None for the local model (it lives
    in the worker's process)."""
    return endpoint_probe(settings.llm_config()) if settings.llm_provider == "openai" else None


@contextlib.asynccontextmanager
async def _given_model(settings: Settings, factory: ModelFactory) -> AsyncIterator[ModelSource]:
    yield ModelSource(
        settings.llm_provider, "custom", factory, lambda: True, _configured_probe(settings)
    )


@contextlib.asynccontextmanager
async def _remote_model(settings: Settings) -> AsyncIterator[ModelSource]:
    """An API-only replica runs no model: the workers do (an OpenAI-compatible endpoint
    is still probed: the workers use the same one)."""

    def factory() -> BaseChatModel:
        raise ModelUnavailableError("this replica runs no worker")

    yield ModelSource(
        settings.llm_provider,
        settings.resolved_model,
        factory,
        lambda: True,
        _configured_probe(settings),
    )


@contextlib.asynccontextmanager
async def _worker(
    settings: Settings, broadcast: Broadcast, model_factory: ModelFactory
) -> AsyncIterator[None]:
    """Run this process's worker for the context's lifetime. Its tasks write through a
    pool of their own, so API queries cannot starve them."""
    # One connection per running task's event writer, plus the heartbeat and a spare.
    task_engine = create_engine(
        settings.database_url,
        pool_timeout=None,
        pool_size=settings.effective_worker_concurrency + 2,
    )
    try:
        task_log = EventLog(
            session_factory=create_session_factory(task_engine), broadcast=broadcast
        )
        async with run_worker(
            settings.worker_config(), event_log=task_log, model_factory=model_factory
        ):
            yield
    finally:
        await task_engine.dispose()


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, model_factory: ModelFactory | None = None
) -> AsyncIterator[Services]:
    """Open every long-lived resource in order (database at head, bus, model, task
    service, and the worker unless `run_worker` is off) and close them in reverse.
    `model_factory` replaces the configured model."""
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(
            settings.database_url,
            pool_timeout=settings.db_pool_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
        )
        stack.push_async_callback(engine.dispose)
        await upgrade_to_head(engine)
        broadcast = broadcast_for(settings.broadcast_url)
        await broadcast.connect()
        stack.push_async_callback(broadcast.disconnect)
        model = await stack.enter_async_context(
            _given_model(settings, model_factory)
            if model_factory
            else open_model(settings.llm_config())
            if settings.run_worker
            else _remote_model(settings)
        )
        monitor = ModelMonitor(
            model,
            interval=settings.readiness_cache_seconds,
            timeout=settings.readiness_timeout_seconds,
        )
        model = await stack.enter_async_context(monitor.run())
        session_factory = create_session_factory(engine)
        event_log = EventLog(
            session_factory=session_factory,
            broadcast=broadcast,
            poll_interval=settings.follow_poll_seconds,
        )
        tasks = await stack.enter_async_context(open_task_service(settings.database_url, event_log))
        if settings.run_worker:
            await stack.enter_async_context(_worker(settings, broadcast, model.factory))
        yield Services(
            settings,
            engine,
            session_factory,
            event_log,
            tasks,
            model,
            monitor,
            auth=Authenticator(settings, session_factory),
            connections=ConnectionLimiter(settings.ws_max_connections_per_principal),
            rate_limiter=MutationRateLimiter(
                settings.rate_limit_mutations, limiter_storage(settings.broadcast_url)
            ),
        )


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

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, model_factory=model_factory) as services:
            await services.auth.start(settings.host)
            app.state.services = services
            _freeze_startup_objects()
            try:
                yield
            finally:
                gc.unfreeze()  # what shuts down now may be collected again

    # No /docs, /redoc or /openapi.json: Swagger and ReDoc load from a CDN and document no
    # GraphQL operation; those paths lead to GraphiQL instead (add_landing_pages).
    app = FastAPI(
        title="PostAssist",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    router = PostAssistRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphql_introspection else None,
        init_timeout=settings.ws_init_timeout_seconds,
        max_subscriptions=settings.ws_max_subscriptions,
        max_message_bytes=settings.ws_max_size,
        init_max_bytes=settings.ws_init_max_size,
        allowed_origins=settings.cors_origins,  # strawberry's own WebSocket Origin check
    )
    app.include_router(router, prefix="/graphql")
    if settings.graphql_introspection:
        mount_ide_files(app)
    add_landing_pages(app, ide=settings.graphql_introspection)
    app.add_api_route("/healthz", healthz, include_in_schema=False)
    app.add_api_route("/readyz", readyz, include_in_schema=False)
    app.add_exception_handler(UnauthenticatedError, _unauthenticated)
    # Outermost last: Host check, CORS (answers preflights), cross-origin refusal, body cap.
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
        max_age=600,
    )
    app.add_middleware(
        HostGuard, allowed_hosts=settings.allowed_hosts, probe_paths={"/healthz", "/readyz"}
    )
    # Outermost: every HTTP answer gets the security headers, the guards' 400/403/413 too.
    app.add_middleware(SecurityHeadersMiddleware)
    return app
