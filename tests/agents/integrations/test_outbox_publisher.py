"""The outbox publisher on its own, against the real PostgreSQL and NATS JetStream:

- the lease: one holder at a time; a holder that vanishes without a word (its
  connection never closed, as when its host loses power) is taken over once its lease
  expires, and the old holder, coming back, sends nothing: it cannot renew;
- head-of-line: a row the broker always refuses (larger than NATS's max_payload) holds
  back only its own task once it has failed `HOLD_AFTER` times: other tasks' rows go
  out, the refused task's later rows wait behind it; before that, it stops the round.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from agents.integrations.broker import BrokerConfig, stream_name
from agents.integrations.outbox import HOLD_AFTER, OutboxPublisher
from db.engine import create_engine, create_session_factory
from db.messages import OutboxMessage
from tests.agents.integrations.brokers import (
    NATS_URL,
    Subjects,
    delete_streams,
    nats_connection,
    outbox,
    reachable,
    stream_messages,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_vanished_holder_is_taken_over_and_sends_nothing_after(database_url: str) -> None:
    await reachable(NATS_URL)
    engine = create_engine(database_url)
    config = BrokerConfig(url=NATS_URL, publish_timeout=0.2)
    try:
        one = OutboxPublisher(engine, config, lease_seconds=1.5)
        two = OutboxPublisher(engine, config, lease_seconds=1.5)
        assert await one.lease.take() and not await two.lease.take(), "one holder"
        assert await one.lease.take(), "the holder renews"
        started = time.monotonic()
        while not await two.lease.take():  # one is gone: it neither renews nor releases
            assert time.monotonic() - started < 5, "taken over within the lease"
            await asyncio.sleep(0.1)
        took = time.monotonic() - started
        assert one.lease.remaining() == 0, "the old holder's own count ran out first"
        waiting = [SimpleNamespace(id=1, task_id="t", subject="s", payload={}, attempts=0,
                                   message_id="t:1")]  # fmt: skip
        acked, failed, stopped = await one._send(waiting)
        assert (acked, failed, stopped) == ([], [], True), "the old holder sends nothing"
        assert not await one.lease.take(), "and cannot take it back"
        await two.lease.release()
        assert await one.lease.take(), "released: taken at once"
    finally:
        await one.close()
        await engine.dispose()
    print(f"lease of 1.5 s taken over after {took:.2f} s")
    assert 1.0 <= took < 3.0


def row(task_id: str, seq: int, subject: str, size: int = 0, attempts: int = 0) -> OutboxMessage:
    payload = {"id": f"{task_id}:{seq}", "data": {"pad": "x" * size}}
    return OutboxMessage(message_id=f"{task_id}:{seq}", task_id=task_id, seq=seq, type="t",
                         subject=subject, payload=payload, attempts=attempts)  # fmt: skip


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("attempts", [0, HOLD_AFTER - 1])
async def test_a_row_the_broker_refuses_holds_back_only_its_task(
    database_url: str, attempts: int
) -> None:
    await reachable(NATS_URL)
    subjects = Subjects.new()
    subject = f"{subjects.events}.task.queued"
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as session:
        session.add(row("x", 1, subject, size=2 * 1024 * 1024, attempts=attempts))
        session.add(row("x", 2, subject))
        session.add(row("y", 1, subject))
        await session.commit()
    config = BrokerConfig(url=NATS_URL, events_subject=subjects.events, publish_interval=0.01)
    publisher = OutboxPublisher(engine, config)
    try:
        assert await publisher.lease.take()
        await publisher.round()
        async with nats_connection() as connection:
            stored = await stream_messages(connection.jetstream(), stream_name(subjects.events))
    finally:
        await publisher.close()
        await engine.dispose()
        await delete_streams(stream_name(subjects.events))
    rows = {r.message_id: r for r in await outbox(database_url)}
    assert rows["x:1"].sent_at is None and rows["x:1"].attempts == attempts + 1
    assert "payload" in (rows["x:1"].last_error or "").lower()
    assert rows["x:2"].sent_at is None and rows["x:2"].attempts == 0, "x keeps its order"
    if attempts == 0:
        assert rows["y:1"].sent_at is None and not stored, "a new failure stops the round"
    else:
        assert rows["y:1"].sent_at is not None, "the other task goes on"
        assert [m.headers["Nats-Msg-Id"] for m in stored] == ["y:1"]
