"""The typed GraphQL context, the long-lived services it carries, and the `Info` alias."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from agents.llm import ModelSource
from agents.tasks import TaskService
from db.engine import SessionFactory
from db.event_log import EventLog
from graph.health import ModelMonitor
from graph.settings import Settings


@dataclass
class Services:
    """Everything the lifespan owns that resolvers use: settings, database, event log,
    task service and the model (its `ready()` says whether it can take requests)."""

    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    event_log: EventLog
    tasks: TaskService
    model: ModelSource
    model_monitor: ModelMonitor


class Context(BaseContext):
    """Per-request GraphQL context: the app's `Services`."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services


Info = strawberry.Info[Context, None]


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency: the context for one HTTP request or WebSocket."""
    return Context(connection.app.state.services)
