"""Broker messages without a broker: the CloudEvents PostAssist builds (valid to the
`cloudevents` package's reader, the attributes the README names), where they go on
each broker, how a request's data is read (errors per camelCase field) and what is not
a request; and the Kafka path through FastStream's in-memory `TestKafkaBroker` (no
Kafka server runs here): the same bytes, the events topic, the task id as the key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from agents.integrations.broker import (
    CONTENT_TYPE,
    BrokerConfig,
    Outgoing,
    broker_kind,
    encode,
    event_destination,
    lifecycle_cloudevent,
    overlapping_subjects,
    refused_reply,
    reply_id,
    stream_name,
)
from agents.integrations.broker_client import BrokerClient, subject_matches
from agents.integrations.requests import FieldError, Unreadable, post_request, read_event
from db.enums import EventKind
from db.models import AgentLog, PostRequest, Task

pytestmark = pytest.mark.anyio

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def completed_task() -> tuple[Task, AgentLog]:
    task = Task(id="a" * 32, paper_title="Attention Is All You Need", owner="bot",
                status="COMPLETED", content="A post.", hashtags=["#ai"])  # fmt: skip
    row = AgentLog(task_id=task.id, seq=7, kind=EventKind.TASK_STATUS,
                   data={"status": "COMPLETED"}, created_at=AT)  # fmt: skip
    return task, row


def test_a_lifecycle_event_is_a_valid_structured_cloudevent() -> None:
    task, row = completed_task()
    event = lifecycle_cloudevent(task, row, source="/postassist/test")
    assert event is not None
    assert event["specversion"] == "1.0" and event["id"] == f"{task.id}:7"
    assert event["type"] == "dev.postassist.task.completed"
    assert event["source"] == "/postassist/test" and event["subject"] == task.id
    assert event["datacontenttype"] == "application/json"
    assert event["time"] == "2026-01-02T03:04:05.678000Z"
    assert event["data"]["taskId"] == task.id and event["data"]["seq"] == 7
    assert event["data"]["post"] == {"content": "A post.", "hashtags": ["#ai"]}
    parsed = from_http_event(HTTPMessage({"content-type": CONTENT_TYPE}, encode(event)))
    assert parsed.get_id() == event["id"] and parsed.get_data() == event["data"]
    assert parsed.get_time() == AT


def test_agent_rows_make_no_cloudevent() -> None:
    task, _ = completed_task()
    row = AgentLog(task_id=task.id, seq=2, kind=EventKind.AGENT_STARTED, created_at=AT)
    assert lifecycle_cloudevent(task, row) is None


def test_subjects_streams_and_kinds() -> None:
    nats = BrokerConfig(url="nats://h:4222", events_subject="pa.events")
    assert event_destination(nats, "task.completed") == "pa.events.task.completed"
    rabbit = BrokerConfig(url="amqp://guest:guest@h:5672/", events_subject="pa.events")
    assert event_destination(rabbit, "task.queued") == "pa.events.task.queued"
    kafka = BrokerConfig(url="kafka://h:9092", events_subject="pa.events")
    assert event_destination(kafka, "task.completed") == "pa.events", "one topic: task order"
    assert [broker_kind(u) for u in ("nats://x", "amqps://x", "kafka://x")] == [
        "nats", "rabbit", "kafka",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no broker"):
        broker_kind("redis://x")
    assert stream_name("postassist.events") == "POSTASSIST_EVENTS"
    assert reply_id("bot", "r1", "t") == reply_id("bot", "r1", "t") != reply_id("eve", "r1", "t")


def test_nats_subject_wildcards() -> None:
    assert subject_matches("pa.events.>", "pa.events.task.completed")
    assert not subject_matches("pa.events.>", "pa.events")
    assert subject_matches("pa.*.x", "pa.events.x") and not subject_matches("pa.*", "pa.a.b")
    assert subject_matches("pa.requests", "pa.requests")
    assert not subject_matches("pa.requests", "pa.requests.dead")


def test_a_request_is_read_in_camel_case_with_an_error_per_field() -> None:
    request = post_request({"paperTitle": "  Attention  ", "maxHashtags": 3, "tone": "CASUAL"})
    assert isinstance(request, PostRequest)
    assert request.paper_title == "Attention" and request.max_hashtags == 3
    errors = post_request({"paperTitle": "", "maxHashtags": 99, "colour": "red"})
    assert isinstance(errors, list)
    assert {e.field for e in errors} == {"colour", "paperTitle", "maxHashtags"}
    assert all(isinstance(e, FieldError) and e.code == "BAD_USER_INPUT" for e in errors)
    assert next(e for e in errors if e.field == "paperTitle").message.startswith("paperTitle:")


def cloudevent(**overrides: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "r1", "source": "/bot", "type": "x",
            "data": {"paperTitle": "Attention"}, **overrides}  # fmt: skip


def test_structured_and_binary_requests_are_read() -> None:
    attributes, data = read_event(json.dumps(cloudevent(principal="bot")).encode(), {})
    assert attributes["principal"] == "bot" and data == {"paperTitle": "Attention"}
    headers = {"ce-specversion": "1.0", "ce-id": "r2", "ce-source": "/bot", "ce-type": "x",
               "ce-principal": "bot", "content-type": "application/json"}  # fmt: skip
    attributes, data = read_event(b'{"paperTitle": "Attention"}', headers)
    assert attributes["id"] == "r2" and attributes["principal"] == "bot"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff not json", "not JSON"),
        (b'{"paperTitle": "x"}', "specversion expected"),
        (b"[1, 2]", "specversion expected"),
        (json.dumps({"specversion": "1.0", "id": "r"}).encode(), "not a CloudEvent"),
        (json.dumps(cloudevent(data=None)).encode(), "no data"),
        (json.dumps(cloudevent(data="text")).encode(), "not a JSON object"),
        (b"[" * 100_000, "nested too deeply"),  # json raises RecursionError
    ],
)
def test_what_is_not_a_request(body: bytes, reason: str) -> None:
    with pytest.raises(Unreadable, match=reason):
        read_event(body, {})


async def test_the_kafka_path_sends_the_same_message_keyed_by_task() -> None:
    from faststream import Context
    from faststream.kafka import TestKafkaBroker
    from faststream.message import StreamMessage

    task, row = completed_task()
    config = BrokerConfig(url="kafka://127.0.0.1:9092", events_subject="pa.events")
    event = lifecycle_cloudevent(task, row)
    assert event is not None
    outgoing = Outgoing(event_destination(config, "task.completed"), encode(event),
                        event["id"], task.id)  # fmt: skip
    client = BrokerClient(config)
    seen: list[StreamMessage[Any]] = []

    @client.raw.subscriber("pa.events")
    async def capture(message: Annotated[StreamMessage[Any], Context("message")]) -> None:
        seen.append(message)

    async with TestKafkaBroker(client.raw):
        await client.publish(outgoing)
    (message,) = seen
    assert message.body == encode(event)
    assert message.raw_message.key == task.id.encode()
    assert message.raw_message.topic == "pa.events"
    assert message.headers["content-type"] == CONTENT_TYPE
    assert message.headers["ce_id"] == event["id"]


def test_reply_addresses_under_postassists_own_subjects_are_refused() -> None:
    config = BrokerConfig(url="nats://h", events_subject="pa.events", consume=True,
                          requests_subject="pa.requests", results_subject="pa.results",
                          dead_letter_subject="pa.requests.dead")  # fmt: skip
    for hostile in ("pa.events", "pa.events.task.completed", "pa.requests", "pa.requests.x",
                    "pa.requests.dead", "inbox.*", "inbox.>", "a b", "", "x" * 256):  # fmt: skip
        assert refused_reply(config, hostile), hostile
    for fine in ("pa.results", "pa.eventsx", "inbox.bot.1", "_INBOX.abc", "amq.gen-Xy_1"):
        assert refused_reply(config, fine) is None, fine


def test_overlapping_subjects_are_a_settings_error() -> None:
    from graph.settings import Settings

    config = BrokerConfig(url="nats://h", events_subject="pa", consume=True,
                          requests_subject="pa.requests")  # fmt: skip
    assert "under the events subject" in (overlapping_subjects(config) or "")
    assert overlapping_subjects(BrokerConfig(url="nats://h", consume=True)) is None
    with pytest.raises(ValueError, match="BROKER_EVENTS_SUBJECT overlaps"):
        Settings(broker_url="nats://h", broker_consume=True, broker_principals=["bot"],
                 broker_events_subject="postassist", _env_file=None)  # fmt: skip
