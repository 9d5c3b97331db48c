"""Requests through the real NATS JetStream server (127.0.0.1:4222, `TEST_NATS_URL`),
the consumer (`RequestConsumer` on a `BrokerClient`) and a `TaskService` with its real
DBOS client on SQLite, without the app (the full path is `test_broker_nats`'s):

- a true redelivery: the first delivery's ack becomes a nack after the task committed
  and the reply went out (a worker that died before its ack), JetStream hands the
  message over again (`num_delivered` 2), and it gets the same reply and no second task;
- JSON nested too deeply to parse (`RecursionError`) is dead-lettered, not redelivered;
- a `replyto` under PostAssist's own subjects writes nothing there (the events stream
  stays empty), starts nothing, and is rejected on the results subject, for an allowed
  principal and a forbidden one alike;
- a request that fails every time (its database has no tables) is dead-lettered with
  the last error on its `MAX_DELIVERIES`th delivery, and the messages behind it go on.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from broadcaster import Broadcast
from sqlmodel import select

from agents.integrations.broker import BrokerConfig, stream_name
from agents.integrations.broker_client import DURABLE, BrokerClient, Incoming
from agents.integrations.requests import DEAD_LETTER_TYPE, MAX_DELIVERIES, RequestConsumer
from agents.runtime.tasks import open_task_service
from db.engine import create_engine, create_session_factory
from db.event_log import EventLog
from db.models import Task
from tests.agents.integrations.brokers import (
    NATS_URL,
    Subjects,
    delete_streams,
    nats_connection,
    reachable,
    wait_for,
)
from tests.graph.api.test_webhooks import INPUT

pytestmark = pytest.mark.anyio


def config_for(subjects: Subjects) -> BrokerConfig:
    return BrokerConfig(
        url=NATS_URL, events_subject=subjects.events, consume=True,
        requests_subject=subjects.requests, results_subject=subjects.results,
        dead_letter_subject=subjects.dead, principals=frozenset({"bot"}),
        publish_interval=0.05, publish_timeout=2.0,
    )  # fmt: skip


def request(request_id: str, **extensions: Any) -> bytes:
    return json.dumps({"specversion": "1.0", "id": request_id, "source": "/tests/bot",
                       "type": "dev.example.generate", "data": INPUT,
                       **extensions}).encode()  # fmt: skip


@asynccontextmanager
async def consuming(
    database_url: str, subjects: Subjects, seen: list[Incoming]
) -> AsyncIterator[tuple[Any, dict[str, list[dict[str, Any]]]]]:
    """A consumer on `subjects` with tasks in `database_url`; yields JetStream and the
    messages that arrived per subject (replies, dead letters). The first delivery of
    a request whose id starts with `redo` is nacked in place of its ack."""
    await reachable(NATS_URL)
    config = config_for(subjects)
    engine = create_engine(database_url)
    bus = Broadcast("memory://")
    await bus.connect()
    log = EventLog(session_factory=create_session_factory(engine), broadcast=bus)
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        async with open_task_service(database_url, log) as tasks, nats_connection() as nc:

            async def keep(message: Any) -> None:
                try:
                    got[message.subject].append(json.loads(message.data))
                except (ValueError, RecursionError):  # the garbage requests themselves
                    got[message.subject].append({"raw": message.data[:20]})

            await nc.subscribe(f"{subjects.prefix}.>", cb=keep)
            client = BrokerClient(config, requests=True)
            consumer = RequestConsumer(config, tasks, client)

            async def handle(incoming: Incoming) -> None:
                seen.append(incoming)
                if incoming.deliveries == 1 and b'"id": "redo' in incoming.body:
                    incoming.ack = incoming.nack  # type: ignore[method-assign]
                await consumer.handle(incoming)

            client.subscribe(handle)
            await client.start()
            try:
                yield nc.jetstream(), got
            finally:
                await client.close()
    finally:
        await bus.disconnect()
        await engine.dispose()
        await delete_streams(stream_name(subjects.events), stream_name(subjects.requests))


async def settled(js: Any, subjects: Subjects) -> bool:
    """Whether the durable consumer of the requests has nothing waiting or unacked
    (every request was acknowledged)."""
    info = await js.consumer_info(stream_name(subjects.requests), DURABLE)
    return info.num_ack_pending == 0 and info.num_pending == 0


async def tasks_in(database_url: str) -> list[Task]:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.exec(select(Task))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_redelivery_garbage_and_hostile_reply_addresses(database_url: str) -> None:
    subjects = Subjects.new()
    seen: list[Incoming] = []
    own = [f"{subjects.events}.task.completed", subjects.events, subjects.requests,
           subjects.dead, f"{subjects.prefix}.inbox.*"]  # fmt: skip
    inbox = f"{subjects.prefix}.inbox.bot"
    async with consuming(database_url, subjects, seen) as (js, got):
        await js.publish(subjects.requests, request("redo-1", principal="bot", replyto=inbox))
        await wait_for(lambda: asyncio.sleep(0, len(got[inbox]) == 2))
        await js.publish(subjects.requests, b"[" * 100_000)
        deep = b'{"specversion":"1.0","id":"d","source":"/s","type":"t","data":'
        await js.publish(subjects.requests, deep + b"[" * 100_000 + b"}")
        for index, target in enumerate(own):
            for principal in ("bot", "mallory"):
                hostile = request(f"h{index}-{principal}", principal=principal, replyto=target)
                await js.publish(subjects.requests, hostile)
        await wait_for(lambda: asyncio.sleep(0, len(got[subjects.results]) == 2 * len(own)))
        await wait_for(lambda: asyncio.sleep(0, len(got[subjects.dead]) == 2))
        events = await js.stream_info(stream_name(subjects.events))
        await wait_for(lambda: settled(js, subjects))
    tasks = await tasks_in(database_url)

    assert [i.deliveries for i in seen if b"redo-1" in i.body] == [1, 2], "redelivered"
    (task,) = tasks
    first, again = got[inbox]
    assert first["id"] == again["id"] and first["data"]["taskId"] == again["data"]["taskId"]
    assert first["data"]["taskId"] == task.id, "the redelivery started no second task"
    reasons = [letter["data"]["reason"] for letter in got[subjects.dead]]
    assert reasons == ["JSON nested too deeply to read"] * 2
    assert events.state.messages == 0, "nothing was written into the events stream"
    for subject, messages in got.items():
        types = {str(message.get("type")) for message in messages}
        if subject == subjects.dead:
            assert types == {DEAD_LETTER_TYPE}
        elif subject not in (inbox, subjects.results):
            assert not {t for t in types if t.startswith("dev.postassist.")}, subject
    for reply in got[subjects.results]:
        assert reply["type"] == "dev.postassist.request.rejected"
        assert [e["field"] for e in reply["data"]["errors"]] == ["replyto"]
    assert max(i.deliveries for i in seen) == 2


async def test_a_request_that_always_fails_is_dead_lettered(sqlite_url: str) -> None:
    subjects = Subjects.new()
    seen: list[Incoming] = []
    async with consuming(sqlite_url, subjects, seen) as (js, got):  # no tables: fails
        await js.publish(subjects.requests, request("r-1", principal="bot"))
        await js.publish(subjects.requests, b"behind it")
        await wait_for(lambda: asyncio.sleep(0, len(got[subjects.dead]) == 2))
        await wait_for(lambda: settled(js, subjects))

    (garbage,) = [d for d in got[subjects.dead] if d["data"].get("body") == "behind it"]
    (stuck,) = [d for d in got[subjects.dead] if d is not garbage]
    assert [i.deliveries for i in seen if b'"r-1"' in i.body] == list(range(1, MAX_DELIVERIES + 1))
    assert stuck["data"]["reason"].startswith(f"not answered after {MAX_DELIVERIES} deliveries")
    assert "no such table" in stuck["data"]["reason"], "the last error"
    assert json.loads(stuck["data"]["body"])["id"] == "r-1"
    assert not got[subjects.results]
