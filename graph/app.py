"""The FastAPI app: GraphQL at /graphql (GraphiQL, both WebSocket protocols) and a
lifespan that owns the engine, the broadcast, the runner and the local model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from broadcaster import Broadcast
from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from agents.llm import LocalModelServer, ModelConfig, build_chat_model
from agents.runner import Runner
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.migrate import upgrade_to_head
from graph.context import Services, get_context
from graph.schema import build_schema
from graph.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ModelFactory = Callable[[], BaseChatModel]


def model_config(settings: Settings, *, base_url: str | None = None) -> ModelConfig:
    """The `ModelConfig` for `settings` (`base_url` overrides, for the local server)."""
    return ModelConfig(
        provider=settings.llm_provider,
        model=settings.resolved_model,
        base_url=base_url or settings.openai_base_url,
        api_key=settings.openai_api_key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
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
        engine = create_engine(settings.database_url)
        await upgrade_to_head(engine)
        broadcast = Broadcast(settings.broadcast_url)
        await broadcast.connect()
        server: LocalModelServer | None = None
        try:
            factory, ready = model_factory, (lambda: True)
            if factory is None and settings.llm_provider == "local":
                server = LocalModelServer(
                    model_path=Path(settings.local_model_path)
                    if settings.local_model_path
                    else None,
                    n_ctx=settings.local_model_context,
                    startup_timeout=settings.local_model_startup_seconds,
                )
                base_url = await server.start()
                config = model_config(settings, base_url=base_url)
                local = server

                def factory() -> BaseChatModel:
                    local.check_alive()
                    return build_chat_model(config)

                ready = local.is_running
            elif factory is None:
                config = model_config(settings)
                build_chat_model(config)  # fail at start-up on a missing key

                def factory() -> BaseChatModel:
                    return build_chat_model(config)

            session_factory = create_session_factory(engine)
            event_log = EventLog(
                session_factory=session_factory,
                broadcast=broadcast,
                poll_interval=settings.follow_poll_seconds,
            )
            runner = Runner(
                event_log=event_log,
                model_factory=factory,
                max_concurrent=settings.max_concurrent_generations,
                max_revisions=settings.max_revisions,
                timeout=settings.generation_timeout_seconds,
            )
            app.state.services = Services(
                settings=settings,
                engine=engine,
                session_factory=session_factory,
                broadcast=broadcast,
                event_log=event_log,
                runner=runner,
                model_name=settings.resolved_model if model_factory is None else "custom",
                model_ready=ready,
            )
            recovered = await runner.recover()
            if recovered:
                logger.info("recovered %d unfinished tasks", recovered)
            yield
            await runner.shutdown()
        finally:
            if server is not None:
                await server.stop()
            await broadcast.disconnect()
            await engine.dispose()

    app = FastAPI(title="PostAssist", version="0.1.0", lifespan=lifespan)
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
