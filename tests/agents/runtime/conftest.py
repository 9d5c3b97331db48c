"""The event log the runtime's tests run tasks on: the `database_url` database (a SQLite
file, a fresh PostgreSQL database) with the in-process bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from broadcaster import Broadcast

from db.engine import create_engine, create_session_factory
from db.event_log import EventLog


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[EventLog]:
    engine = create_engine(database_url)
    bus = Broadcast("memory://")
    await bus.connect()
    yield EventLog(session_factory=create_session_factory(engine), broadcast=bus)
    await bus.disconnect()
    await engine.dispose()
