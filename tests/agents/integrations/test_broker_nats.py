"""Lifecycle events and requests through the real NATS JetStream server (127.0.0.1:4222,
`TEST_NATS_URL`), with the app, its worker and the scripted model.

- The outbox on PostgreSQL (the lease-holding publisher) sends every task's events as
  valid CloudEvents in `seq` order; the server stopped for 10 s mid-run (stopped and
  started again inside the test) loses none and duplicates none; the stream holds
  exactly the outbox's messages; the failed tries are recorded on the row that waited.
- Requests (on SQLite): a request starts a task and gets its reply on its `replyto`; the
  same request again starts no second task and gets the same reply; a principal not in
  BROKER_PRINCIPALS and bad fields are rejected on the results subject; garbage goes to
  the dead-letter subject with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from sqlalchemy import func
from sqlmodel import select

from agents.integrations.broker import CONTENT_TYPE, stream_name
from agents.integrations.requests import DEAD_LETTER_TYPE
from db.engine import create_engine, create_session_factory
from db.models import Task
from tests.agents.integrations.brokers import (
    NATS_URL,
    Subjects,
    all_sent,
    delete_streams,
    nats_connection,
    outbox,
    reachable,
    start_nats,
    stop_nats,
    stream_messages,
    wait_for,
)
from tests.graph.api.test_webhooks import GENERATE, INPUT, data_of, service

pytestmark = pytest.mark.anyio

OUTAGE = 10.0


def parsed(message: Any) -> dict[str, Any]:
    """A stored message as a CloudEvent (raises unless it is a valid one)."""
    assert message.headers["content-type"] == CONTENT_TYPE
    event = from_http_event(HTTPMessage({"content-type": CONTENT_TYPE}, message.data))
    assert message.headers["Nats-Msg-Id"] == event.get_id()
    return {**event.get_attributes(), "data": event.get_data()}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_events_arrive_in_order_and_a_10s_outage_loses_and_repeats_nothing(
    database_url: str,
) -> None:
    await reachable(NATS_URL)
    subjects = Subjects.new()
    stream = stream_name(subjects.events)
    settings = subjects.settings(database_url, NATS_URL)
    figures: dict[str, Any] = {}
    try:
        async with service(settings) as gql:
            first = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
            assert (await gql.wait_until_finished(first))["status"] == "COMPLETED"
            figures["sent before"] = len(await all_sent(database_url))
            stop_nats()
            stopped = time.monotonic()
            try:
                during = [(await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
                          for _ in range(2)]  # fmt: skip
                for task_id in during:
                    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
                await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
                waiting = [row for row in await outbox(database_url) if row.sent_at is None]
            finally:
                start_nats()
            started = time.monotonic()
            rows = await all_sent(database_url)
            figures["delay after restart (s)"] = round(time.monotonic() - started, 2)
        async with nats_connection() as connection:
            stored = [parsed(m) for m in await stream_messages(connection.jetstream(), stream)]
    finally:
        start_nats()
        await delete_streams(stream)

    figures.update({"waiting in the outage": len(waiting), "rows": len(rows),
                    "stored": len(stored)})  # fmt: skip
    print("NATS outage:", figures)
    assert len(waiting) >= 2 * 3, "both tasks' events (queued, running, completed) waited"
    ids = [event["id"] for event in stored]
    assert len(ids) == len(set(ids)), "no message twice"
    assert ids == [row.message_id for row in rows], "every row, once, in outbox order"
    by_task: dict[str, list[int]] = defaultdict(list)
    for event in stored:
        assert event["specversion"] == "1.0" and event["source"] == "/postassist"
        assert event["type"].startswith("dev.postassist.task.")
        assert event["id"] == f"{event['subject']}:{event['data']['seq']}"
        by_task[event["subject"]].append(event["data"]["seq"])
    assert set(by_task) == {first, *during}
    for task_id, seqs in by_task.items():
        assert seqs == sorted(seqs) and len(seqs) >= 3, (task_id, seqs)
        assert stored[ids.index(f"{task_id}:{seqs[-1]}")]["type"] == "dev.postassist.task.completed"
    assert waiting[0].attempts >= 1 and waiting[0].last_error, "the outage was recorded"
    first_waiting = next(row for row in rows if row.id == waiting[0].id)
    assert first_waiting.attempts >= 2 and first_waiting.last_error
    assert all(row.attempts == 1 for row in rows if row.id not in {w.id for w in waiting})


def request(subjects: Subjects, request_id: str, data: Any, **extensions: Any) -> bytes:
    event = {"specversion": "1.0", "id": request_id, "source": "/tests/bot",
             "type": "dev.example.generate", "datacontenttype": "application/json",
             "data": data, **extensions}  # fmt: skip
    return json.dumps(event).encode()


async def test_requests_replies_redelivery_refusals_and_dead_letters(sqlite_url: str) -> None:
    await reachable(NATS_URL)
    subjects = Subjects.new()
    settings = subjects.settings(
        sqlite_url, NATS_URL, broker_consume=True, broker_principals=["bot"]
    )
    inbox = f"{subjects.prefix}.inbox"
    streams = (stream_name(subjects.events), stream_name(subjects.requests))
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        async with service(settings) as gql, nats_connection() as connection:
            js = connection.jetstream()

            async def collect(message: Any) -> None:
                got[message.subject].append(json.loads(message.data))

            for subject in (inbox, subjects.results, subjects.dead):
                await connection.subscribe(subject, cb=collect)

            async def stream_ready() -> bool:
                try:
                    return bool(await js.stream_info(streams[1]))
                except Exception:
                    return False

            await wait_for(stream_ready)
            good = request(subjects, "req-1", INPUT, principal="bot", replyto=inbox)
            await js.publish(subjects.requests, good)
            await wait_for(lambda: asyncio.sleep(0, len(got[inbox]) == 1))
            await js.publish(subjects.requests, good)  # redelivered: the same id
            await js.publish(subjects.requests, request(subjects, "req-2", INPUT,
                                                        principal="mallory"))  # fmt: skip
            bad = {"paperTitle": "", "colour": "red"}
            await js.publish(subjects.requests, request(subjects, "req-3", bad, principal="bot"))
            await js.publish(subjects.requests, b"\x00 not json")
            await js.publish(subjects.requests, request(subjects, "req-4", None, principal="bot"))
            places = (inbox, subjects.results, subjects.dead)
            await wait_for(lambda: asyncio.sleep(0, [len(got[p]) for p in places] == [2, 2, 2]))
            await gql.wait_until_finished(got[inbox][0]["data"]["taskId"])
            engine = create_engine(sqlite_url)
            try:
                async with create_session_factory(engine)() as session:
                    tasks = (await session.exec(select(Task))).all()
                    count = await session.scalar(select(func.count()).select_from(Task))
            finally:
                await engine.dispose()
    finally:
        await delete_streams(*streams)

    assert count == 1, "the repeated request started no second task"
    (task,) = tasks
    assert task.owner == "bot" and task.paper_title == INPUT["paperTitle"]
    accepted, again = got[inbox]
    assert accepted["type"] == "dev.postassist.request.accepted"
    assert accepted["data"]["taskId"] == task.id and accepted["causationid"] == "req-1"
    assert accepted["subject"] == task.id and accepted["specversion"] == "1.0"
    assert again["id"] == accepted["id"] and again["data"]["taskId"] == task.id
    forbidden, invalid = sorted(got[subjects.results], key=lambda e: e["causationid"])
    assert forbidden["type"] == invalid["type"] == "dev.postassist.request.rejected"
    assert [e["code"] for e in forbidden["data"]["errors"]] == ["FORBIDDEN"]
    assert {e["field"] for e in invalid["data"]["errors"]} == {"paperTitle", "colour"}
    reasons = sorted(letter["data"]["reason"] for letter in got[subjects.dead])
    assert reasons[0].startswith("not JSON") and reasons[1] == "the CloudEvent has no data"
    assert {letter["type"] for letter in got[subjects.dead]} == {DEAD_LETTER_TYPE}
