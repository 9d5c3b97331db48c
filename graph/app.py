"""The FastAPI app: GraphQL at /graphql (GraphiQL, both WebSocket protocols) and a
lifespan that owns the engine, the bus, the model, the task service and the worker."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from broadcaster import Broadcast
from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from agents.llm import ModelSource, ModelUnavailableError, open_model
from agents.tasks import open_task_service
from agents.worker import run_worker
from db import VERSION
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.migrate import upgrade_to_head
from graph.context import Services, get_context
from graph.schema import build_schema
from graph.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ModelFactory = Callable[[], BaseChatModel]


@contextlib.asynccontextmanager
async def _given_model(settings: Settings, factory: ModelFactory) -> AsyncIterator[ModelSource]:
    yield ModelSource(settings.llm_provider, "custom", factory, lambda: True)


@contextlib.asynccontextmanager
async def _remote_model(settings: Settings) -> AsyncIterator[ModelSource]:
    """An API-only replica runs no model: the workers do."""

    def factory() -> BaseChatModel:
        raise ModelUnavailableError("this replica runs no worker")

    yield ModelSource(settings.llm_provider, settings.resolved_model, factory, lambda: True)


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, model_factory: ModelFactory | None = None
) -> AsyncIterator[Services]:
    """Open every long-lived resource in order (database at head, bus, model, task
    service, and the worker unless `run_worker` is off) and close them in reverse.
    `model_factory` replaces the configured model."""
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(settings.database_url, pool_timeout=settings.db_pool_timeout_seconds)
        stack.push_async_callback(engine.dispose)
        await upgrade_to_head(engine)
        broadcast = Broadcast(settings.broadcast_url)
        await broadcast.connect()
        stack.push_async_callback(broadcast.disconnect)
        model = await stack.enter_async_context(
            _given_model(settings, model_factory)
            if model_factory
            else open_model(settings.llm_config())
            if settings.run_worker
            else _remote_model(settings)
        )
        session_factory = create_session_factory(engine)
        event_log = EventLog(
            session_factory=session_factory,
            broadcast=broadcast,
            poll_interval=settings.follow_poll_seconds,
        )
        tasks = await stack.enter_async_context(open_task_service(settings.database_url, event_log))
        if settings.run_worker:
            await stack.enter_async_context(
                run_worker(
                    settings.worker_config(), event_log=event_log, model_factory=model.factory
                )
            )
        yield Services(settings, engine, session_factory, event_log, tasks, model)


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
            app.state.services = services
            yield

    app = FastAPI(title="PostAssist", version=VERSION, lifespan=lifespan)
    router = GraphQLRouter(
        build_schema(),
        context_getter=get_context,
        graphql_ide="graphiql",
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
    )
    app.include_router(router, prefix="/graphql")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
