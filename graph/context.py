"""The typed GraphQL context, the long-lived services it carries, and the `Info` alias."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from agents.llm import ModelSource
from agents.tasks import TaskService
from db import repository
from db.engine import SessionFactory
from db.event_log import EventLog
from db.models import Task as TaskRow
from graph.auth import Authenticator, ConnectionLimiter, Principal, made_locally
from graph.errors import UnauthenticatedError
from graph.health import ModelMonitor
from graph.ratelimit import MutationRateLimiter
from graph.settings import Settings


@dataclass
class Services:
    """Everything the lifespan owns that resolvers use: settings, database, event log,
    task service, the model (its `ready()` says whether it can take requests), who
    callers are (`auth`), their WebSocket connections and their mutation budget."""

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
        #: Whether the request was made on this machine (`graph.auth.made_locally`).
        self.local = local
        #: The `Authorization` a WebSocket was authenticated with, checked again while
        #: it stays open.
        self.authorization: str | None = None
        #: The principal this WebSocket is counted for in `services.connections`.
        self.counted: Principal | None = None

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
        caller nothing about tasks that are not theirs."""
        async with self.services.session_factory() as session:
            row = await repository.get_task(session=session, task_id=task_id)
        return row if row is not None and self.principal.can_see(row.owner) else None


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
