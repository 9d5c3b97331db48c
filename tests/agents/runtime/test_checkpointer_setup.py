"""Workers that start together on PostgreSQL set the checkpointer's tables up one at a
time, and the one that waits runs no statement while it waits: the set-up's
`CREATE INDEX CONCURRENTLY` waits for every running statement of the database, so a
waiter blocked inside `pg_advisory_lock` would deadlock with the lock's holder, and
PostgreSQL cannot see that deadlock (the holder's lock and its index build are two
connections of one process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from agents.runtime.worker import SETUP_LOCK, open_checkpointer
from tests.conftest import _drop_postgres_database, _postgres_database, service_missing

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = await _postgres_database()
    if name is None:
        service_missing("PostgreSQL is not running on 127.0.0.1:5432")
    yield name
    await _drop_postgres_database(name)


async def test_a_worker_waiting_for_the_setup_lock_blocks_no_index_build(database: str) -> None:
    holder = await psycopg.AsyncConnection.connect(
        f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True
    )
    opened, release = asyncio.Event(), asyncio.Event()

    async def second_worker() -> None:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
        async with open_checkpointer(url, max_connections=2):
            opened.set()
            await release.wait()

    try:
        await holder.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
        await holder.execute("CREATE TABLE scratch (id int)")
        waiter = asyncio.create_task(second_worker())
        await asyncio.sleep(1.0)
        assert not opened.is_set(), "the set-up ran while another worker held its lock"
        # What the holder's own set-up does while it holds the lock: it must finish.
        async with asyncio.timeout(15):
            await holder.execute("CREATE INDEX CONCURRENTLY scratch_id ON scratch (id)")
        await holder.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        async with asyncio.timeout(30):
            await opened.wait()
        release.set()
        await waiter
    finally:
        release.set()
        await holder.close()
