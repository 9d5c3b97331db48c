"""The typed GraphQL context, the long-lived services it carries, and the `Info` alias."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import strawberry
from broadcaster import Broadcast
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from agents.runner import Runner
from db.engine import SessionFactory
from db.event_log import EventLog
from graph.settings import Settings


@dataclass
class Services:
    """Everything the lifespan owns: engine, bus, event log, runner and model status.

    `model_ready()` is True when the chat model can take requests (the local server
    process is alive, or a remote endpoint is configured).
    """

    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    broadcast: Broadcast
    event_log: EventLog
    runner: Runner
    model_name: str
    model_ready: Callable[[], bool]


class Context(BaseContext):
    """Per-request GraphQL context: the app's `Services`."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services


Info = strawberry.Info[Context, None]


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency: the context for one HTTP request or WebSocket."""
    return Context(connection.app.state.services)
