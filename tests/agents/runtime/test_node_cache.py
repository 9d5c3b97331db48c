"""The node cache on the app's database: stored writes come back until they expire; runs
that miss one key at once compute it once; a run that fails hands the key on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agents.runtime.node_cache import DatabaseCache
from db.engine import create_engine, create_session_factory

pytestmark = pytest.mark.anyio

KEY = (("__pregel_ns_writes", "__dynamic__", "paper_researcher_notes"), "k1")
#: A node's writes as the serializer gives them back (msgpack: a tuple comes back a list).
WRITES = [["research", {"summary": "notes"}]]


@pytest.fixture
async def cache(database_url: str) -> AsyncIterator[DatabaseCache]:
    engine = create_engine(database_url)
    yield DatabaseCache(create_session_factory(engine), lease_timeout=5)
    await engine.dispose()


async def test_a_stored_entry_comes_back_until_it_expires(cache: DatabaseCache) -> None:
    assert await cache.aget([KEY]) == {}
    await cache.aset({KEY: (WRITES, None)})
    other = (KEY[0], "k2")
    await cache.aset({other: (WRITES, 1)})
    assert await cache.aget([KEY, other]) == {KEY: WRITES, other: WRITES}
    await asyncio.sleep(1.1)
    assert await cache.aget([KEY, other]) == {KEY: WRITES}
    await cache.aclear()
    assert await cache.aget([KEY]) == {}


async def test_runs_missing_one_key_at_once_compute_it_once(cache: DatabaseCache) -> None:
    computed = 0

    async def run() -> object:
        nonlocal computed
        found = await cache.aget([KEY])
        if KEY in found:
            return found[KEY]
        computed += 1
        await asyncio.sleep(0.2)  # the node's work
        await cache.aset({KEY: (WRITES, None)})
        return WRITES

    results = await asyncio.gather(*(asyncio.create_task(run()) for _ in range(3)))
    assert computed == 1
    assert results == [WRITES] * 3


async def test_a_run_that_fails_hands_the_key_to_a_waiting_one(cache: DatabaseCache) -> None:
    async def failing() -> None:
        assert await cache.aget([KEY]) == {}
        await asyncio.sleep(0.2)
        raise RuntimeError("the model went away")

    first = asyncio.create_task(failing())
    await asyncio.sleep(0.05)  # it holds the lease now
    waiter = asyncio.create_task(cache.aget([KEY]))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # waits for the first run's entry
    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.wait_for(waiter, 2) == {}  # a miss: the waiter computes now
