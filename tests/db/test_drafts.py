"""Draft deltas (`db.drafts`): chunk coalescing, and chunks from a publisher to a
subscriber on another connection of the same bus (a worker and an API replica)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from broadcaster import Broadcast

from db.bus import broadcast_for
from db.drafts import Chunk, Coalescer, DraftDelta, DraftPublisher, subscribe_drafts
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.anyio


def test_tokens_within_the_interval_become_one_chunk() -> None:
    coalescer = Coalescer(interval=0.05, max_chars=100)
    assert coalescer.add("The", 10.0) is None
    assert coalescer.add(" model", 10.02) is None
    assert not coalescer.due(10.04)
    assert coalescer.due(10.05)
    assert coalescer.take() == Chunk("The model", replace=False)
    assert coalescer.take() is None and not coalescer.waiting


def test_enough_characters_publish_at_once() -> None:
    coalescer = Coalescer(interval=10.0, max_chars=8)
    assert coalescer.add("abcd", 0.0) is None
    assert coalescer.add("efgh", 0.0) == Chunk("abcdefgh", replace=False)
    assert not coalescer.waiting


def test_a_replace_drops_what_waits_and_stays_a_replace() -> None:
    coalescer = Coalescer(interval=0.05, max_chars=100)
    coalescer.add("a rejected sente", 0.0)
    coalescer.add("The hook", 0.01, replace=True)
    coalescer.add(" goes on", 0.02)
    assert coalescer.take() == Chunk("The hook goes on", replace=True)
    coalescer.add("next", 0.1)
    assert coalescer.take() == Chunk("next", replace=False)


def test_the_interval_counts_from_the_first_waiting_text() -> None:
    coalescer = Coalescer(interval=0.05, max_chars=100)
    coalescer.add("a", 0.0)
    coalescer.add("b", 0.049)
    assert coalescer.due(0.05)  # a steady trickle does not hold a chunk back for ever


@contextlib.asynccontextmanager
async def other_connection(broadcast: Broadcast) -> AsyncIterator[Broadcast]:
    """A second connection to the bus of `broadcast` (the memory bus is one process's:
    the same one)."""
    if getattr(broadcast, "scheme", "memory") == "memory":
        yield broadcast
        return
    other = broadcast_for(REDIS_URL)
    await other.connect()
    try:
        yield other
    finally:
        await other.disconnect()


async def test_chunks_reach_a_subscriber_on_another_connection(broadcast: Broadcast) -> None:
    async with other_connection(broadcast) as api_side:
        async with subscribe_drafts(api_side, "t1") as deltas:
            publisher = DraftPublisher(broadcast, "t1", progress=lambda: 0.5, interval=0.02)
            await publisher.write("The ", draft=0, replace=True)
            await publisher.write("model ", draft=0)
            await asyncio.sleep(0.05)
            await publisher.write("writes.", draft=0)
            await publisher.flush()
            await publisher.write("Again.", draft=1, replace=True)
            await publisher.flush()
            got: list[DraftDelta] = []
            async with asyncio.timeout(5):
                async for delta in deltas:
                    got.append(delta)
                    if delta.draft == 1:
                        break
    assert [(d.draft, d.index, d.replace) for d in got] == [
        (0, 0, True),
        (0, 1, False),
        (1, 0, True),
    ]
    assert "".join(d.text for d in got if d.draft == 0) == "The model writes."
    assert all(d.task_id == "t1" and d.progress == 0.5 and d.attempt == 1 for d in got)
    assert publisher.published == 3


async def test_a_long_replace_is_split_below_the_message_limit(broadcast: Broadcast) -> None:
    async with subscribe_drafts(broadcast, "t2") as deltas:
        publisher = DraftPublisher(broadcast, "t2", max_chars=10)
        await publisher.write("x" * 25, draft=0, replace=True)
        got = []
        async with asyncio.timeout(5):
            async for delta in deltas:
                got.append(delta)
                if len(got) == 3:
                    break
    assert [(len(d.text), d.replace) for d in got] == [(10, True), (10, False), (5, False)]


def test_a_malformed_message_is_ignored() -> None:
    assert DraftDelta.parse("not json") is None
    assert DraftDelta.parse('{"draft": 0}') is None
