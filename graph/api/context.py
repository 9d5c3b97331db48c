"""The typed GraphQL context, the long-lived services it carries, what one request
reads once (`QueuePositions`), and the `Info` alias."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension
from strawberry.fastapi import BaseContext

from agents.integrations.webhooks import WebhookService
from agents.llm.chat import ModelSource
from agents.runtime.tasks import TaskService
from db.engine import SessionFactory
from db.event_log import EventLog
from db.models import Task as TaskRow
from graph.errors import UnauthenticatedError
from graph.health import ModelMonitor
from graph.security.auth import Authenticator
from graph.security.connection_caps import ConnectionLimiter
from graph.security.local_mode import made_locally
from graph.security.principals import Principal
from graph.security.rate_limits import MutationRateLimiter
from graph.settings import Settings


@dataclass
class Services:
    """Everything the lifespan owns that resolvers use: settings, database, event log,
    task service, the model (its `ready()` says whether it can take requests), who
    callers are (`auth`), their WebSocket connections and their mutation budget, and
    the principals' webhooks."""

    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    event_log: EventLog
    tasks: TaskService
    model: ModelSource
    model_monitor: ModelMonitor
    auth: Authenticator
    connections: ConnectionLimiter
    rate_limiter: MutationRateLimiter
    webhooks: WebhookService


class QueuePositions:
    """`queuePosition` for many tasks from one read of the queue
    (`TaskService.queue_order`): a DataLoader batches the tasks a request asks about,
    and every batch answers from the same read, made by the first and kept until
    `forget`. So 30 aliases of
    `tasks(first: 100) { edges { node { queuePosition } } }` read the queue once, not
    3,000 times, and every position in one answer comes from the same moment."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks
        self._lock = asyncio.Lock()
        self._order: dict[str, int] | None = None
        self.loader: DataLoader[str, int | None] = DataLoader(load_fn=self._batch)

    async def load(self, task_id: str) -> int | None:
        """The place of `task_id` in the queue (1 = next), or None when it is not queued."""
        return await self.loader.load(task_id)

    async def _batch(self, task_ids: list[str]) -> list[int | None]:
        async with self._lock:
            if self._order is None:
                self._order = await self.tasks.queue_order()
            order = self._order
        return [order.get(task_id) for task_id in task_ids]

    def forget(self) -> None:
        """Drop the read and the loaded positions: the next `load` reads the queue again."""
        self._order = None
        self.loader.clear_all()


class OneQueueReadPerOperation(SchemaExtension):
    """Forgets the context's queue read when an operation ends (`QueuePositions.forget`).
    An HTTP request has a context of its own; a WebSocket keeps one for all its
    operations, and each must read the queue afresh."""

    def on_execute(self) -> Iterator[None]:
        """Run the operation, then forget what it read of the queue."""
        yield
        positions = getattr(self.execution_context.context, "queue_positions", None)
        if isinstance(positions, QueuePositions):
            positions.forget()


class Context(BaseContext):
    """Per-request GraphQL context: the app's `Services` and the caller's `Principal`
    (set from the HTTP `Authorization` header, or at `connection_init` on a WebSocket)."""

    def __init__(
        self,
        services: Services,
        principal: Principal | None = None,
        *,
        upgrade_authorization: str | None = None,
        local: bool = False,
    ) -> None:
        super().__init__()
        self.services = services
        self._principal = principal
        #: A WebSocket's upgrade-request `Authorization` header (used when the
        #: `connection_init` payload carries none).
        self.upgrade_authorization = upgrade_authorization
        #: Whether the request was made on this machine
        #: (`graph.security.local_mode.made_locally`).
        self.local = local
        #: The `Authorization` a WebSocket was authenticated with, checked again while
        #: it stays open.
        self.authorization: str | None = None
        #: The principal this WebSocket is counted for in `services.connections`.
        self.counted: Principal | None = None
        #: Queue positions of this request, from one read of the queue.
        self.queue_positions = QueuePositions(services.tasks)

    @property
    def principal(self) -> Principal:
        """The caller. Raises `UnauthenticatedError` when none was established (only
        the GraphiQL page is served without one)."""
        if self._principal is None:
            raise UnauthenticatedError("authentication required")
        return self._principal

    @principal.setter
    def principal(self, principal: Principal) -> None:
        self._principal = principal

    async def visible_task(self, task_id: str) -> TaskRow | None:
        """The task `task_id` if the caller may see it (its owner, or an admin); None
        for an unknown id and for another principal's task alike, so an id tells a
        caller nothing about tasks that are not theirs (`TaskService.visible`)."""
        return await self.services.tasks.visible(task_id, self.principal)

    async def queue_position(self, task_id: str, *, shared: bool = True) -> int | None:
        """The place of `task_id` in the queue (1 = next; None: not queued). `shared`:
        from the request's one read of the queue (`queue_positions`); false for a
        mutation, whose tasks may be queued after that read, and a subscription event,
        which must see the queue as it is now: one read for this task alone."""
        if shared:
            return await self.queue_positions.load(task_id)
        return await self.services.tasks.queue_position(task_id)


Info = strawberry.Info[Context, None]


def _is_ide_page(connection: HTTPConnection) -> bool:
    """A GET without a query: the GraphiQL page (it holds no data; its operations
    carry the credentials the user types into its headers pane)."""
    return connection.scope.get("method") == "GET" and "query" not in connection.query_params


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency: the context for one HTTP request or WebSocket.

    An HTTP request is authenticated here (`UnauthenticatedError`, which the app turns
    into HTTP 401); a WebSocket is authenticated at `connection_init`
    (`PostAssistRouter.on_ws_connect`)."""
    services: Services = connection.app.state.services
    authorization = connection.headers.get("authorization")
    local = made_locally(connection.scope, connection.headers)
    if connection.scope["type"] == "websocket":
        return Context(services, upgrade_authorization=authorization, local=local)
    if _is_ide_page(connection):
        return Context(services)
    return Context(services, await services.auth.authenticate(authorization, local=local))
