"""Shared fixtures: anyio on asyncio, a real SQLite file migrated to head, a broadcast."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from broadcaster import Broadcast

from db.bus import broadcast_for
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.migrate import upgrade_to_head

if TYPE_CHECKING:
    from tests.db.redis_process import RedisProcess

#: Fixtures shared by the source tests of two packages (`server`, `offline`).
pytest_plugins = ["tests.source_server"]

POSTGRES_ADMIN_URL = "postgresql://127.0.0.1:5432/test"

# No test reaches the internet: research fetches real sources (arXiv, Tavily) only where a
# test points it at a local fixture server (tests/agents/teams/test_sources.py). Set here, before
# any Settings() is read, and inherited by the servers and workers that tests start.
os.environ["SOURCES_ENABLED"] = "false"
os.environ.pop("TAVILY_API_KEY", None)


def service_missing(reason: str) -> None:
    """Skip a test whose server is not running; in CI (CI=true), where PostgreSQL and
    Redis always run, fail instead, so a stopped service never passes as a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'postassist.db'}"


async def _postgres_database() -> str | None:
    """Create a fresh database on the local PostgreSQL; None when it is not running."""
    try:
        import asyncpg
    except ImportError:
        return None
    name = f"postassist_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_ADMIN_URL, user="postgres"), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_postgres_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, user="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    """A migrated, empty database: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = sqlite_url
        name = None
    else:
        name = await _postgres_database()
        if name is None:
            service_missing("PostgreSQL is not running on 127.0.0.1:5432")
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()
    yield url
    if name is not None:
        await _drop_postgres_database(name)


REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture(params=["memory://", pytest.param(REDIS_URL, marks=pytest.mark.redis)])
async def broadcast(request: pytest.FixtureRequest) -> AsyncIterator[Broadcast]:
    """The in-process bus, and the Redis one that several replicas share."""
    bus = broadcast_for(request.param)
    try:
        await asyncio.wait_for(bus.connect(), 5)
    except (OSError, TimeoutError) as exc:
        service_missing(f"{request.param} is not reachable: {exc}")
    yield bus
    await bus.disconnect()


@pytest.fixture
async def event_log(database_url: str, broadcast: Broadcast) -> AsyncIterator[EventLog]:
    engine = create_engine(database_url)
    yield EventLog(
        session_factory=create_session_factory(engine), broadcast=broadcast, poll_interval=0.2
    )
    await engine.dispose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of the test's own on a free port, which it may stop and start
    again without touching the shared one on 6379."""
    from tests.db.redis_process import running_redis  # it imports this module

    with running_redis(tmp_path / "redis") as server:
        yield server
