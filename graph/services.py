"""The service's long-lived resources: `open_services` opens the database (at the
schema's head), the bus, the model (and its monitor), who callers are, the task service
and the worker, in order, and closes them in reverse; `create_app`'s lifespan and
`postassist worker` both use it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from broadcaster import Broadcast
from dbos import DBOSClient
from langchain_core.language_models import BaseChatModel

from agents.integrations.deliveries import WebhookPlugin
from agents.integrations.outbox import OutboxPlugin, OutboxSink
from agents.integrations.requests import ConsumerPlugin
from agents.integrations.webhooks import WebhookService, WebhookSink
from agents.llm.chat import ModelSource, endpoint_probe, open_model
from agents.llm.gate import ModelUnavailableError
from agents.runtime.execution import ModelFactory
from agents.runtime.tasks import TaskService, open_task_service
from agents.runtime.worker import WorkerPlugin, run_worker
from db.bus import broadcast_for
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.migrate import upgrade_to_head
from graph.api.context import Services
from graph.health import ModelMonitor
from graph.security.auth import Authenticator
from graph.security.connection_caps import ConnectionLimiter
from graph.security.rate_limits import MutationRateLimiter, limiter_storage
from graph.settings import Settings


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


def _install_sinks(settings: Settings, event_log: EventLog, client: DBOSClient) -> None:
    """What every status change written through `event_log` also writes, in its
    transaction: webhook deliveries (always: a principal may register one at any time)
    and, with `BROKER_URL`, the broker outbox's rows."""
    event_log.sinks.append(WebhookSink(client))
    if (broker := settings.broker_config()) is not None:
        event_log.sinks.append(OutboxSink(broker))


@contextlib.asynccontextmanager
async def _worker(
    settings: Settings, broadcast: Broadcast, model_factory: ModelFactory, tasks: TaskService
) -> AsyncIterator[None]:
    """Run this process's worker for the context's lifetime, with its plugins (webhook
    deliveries; with `BROKER_URL` the outbox's publisher, and with `BROKER_CONSUME` the
    requests taken from the broker, created through `tasks`). Its tasks write through a
    pool of their own, so API queries cannot starve them."""
    client = tasks.client
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
        _install_sinks(settings, task_log, client)
        worker = settings.worker_config()
        plugins: list[WorkerPlugin] = [
            WebhookPlugin(task_log.session_factory, settings.webhook_config(), worker.queue_poll)
        ]
        if (broker := settings.broker_config()) is not None:
            plugins.append(OutboxPlugin(task_engine, broker, broadcast))
            if broker.consume:
                plugins.append(ConsumerPlugin(broker, tasks))
        async with run_worker(
            worker, event_log=task_log, model_factory=model_factory, plugins=plugins
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
        _install_sinks(settings, event_log, tasks.client)
        if settings.run_worker:
            await stack.enter_async_context(_worker(settings, broadcast, model.factory, tasks))
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
            webhooks=WebhookService(session_factory, tasks.client, settings.webhook_config()),
        )
