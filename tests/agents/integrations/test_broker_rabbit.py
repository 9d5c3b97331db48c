"""Lifecycle events and requests through the real RabbitMQ server (127.0.0.1:5672,
guest/guest, `TEST_AMQP_URL`), with the app, its worker and the scripted model (on
SQLite; the PostgreSQL publisher and the outage are the NATS tests'): a queue bound to
`<events subject>.#` on the topic exchange gets one task's events as valid, persistent
CloudEvents with `message_id` = the CloudEvent id, in `seq` order; a request on the
durable requests queue starts a task and its repeat starts none, both answered on the
results routing key; a request with a `replyto` under the events subject is refused on
the results routing key and writes no event; one with the AMQP `reply_to` property is
answered in that queue (the default exchange); garbage goes to the dead-letter routing
key."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from agents.integrations.broker import CONTENT_TYPE
from agents.integrations.requests import DEAD_LETTER_TYPE
from tests.agents.integrations.brokers import AMQP_URL, Subjects, all_sent, reachable, wait_for
from tests.graph.api.test_webhooks import GENERATE, INPUT, data_of, service

pytestmark = pytest.mark.anyio


async def test_events_requests_and_dead_letters_on_rabbitmq(sqlite_url: str) -> None:
    import aio_pika

    await reachable(AMQP_URL)
    subjects = Subjects.new()
    settings = subjects.settings(
        sqlite_url, AMQP_URL, broker_consume=True, broker_principals=["bot"]
    )
    got: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = {}
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            subjects.prefix, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for key in (f"{subjects.events}.#", subjects.results, subjects.dead):
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, key)
            got[key] = []

            async def keep(message: Any, key: str = key) -> None:
                got[key].append(message)

            await queue.consume(keep, no_ack=True)
        own_queue = await channel.declare_queue(exclusive=True)  # a requester's reply_to
        direct: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def answered(message: Any) -> None:
            direct.append(message)

        await own_queue.consume(answered, no_ack=True)
        async with service(settings) as gql:
            task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
            assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
            rows = await all_sent(sqlite_url)
            request = {"specversion": "1.0", "id": "req-1", "source": "/tests/bot",
                       "type": "dev.example.generate", "principal": "bot",
                       "data": INPUT}  # fmt: skip
            body = json.dumps(request).encode()
            hostile = {**request, "id": "req-3", "replyto": f"{subjects.events}.task.completed"}
            for payload in (body, body, b"<not json/>", json.dumps(hostile).encode()):
                await exchange.publish(aio_pika.Message(payload), routing_key=subjects.requests)
            mallory = json.dumps({**request, "id": "req-2", "principal": "mallory"}).encode()
            await exchange.publish(aio_pika.Message(mallory, reply_to=own_queue.name),
                                   routing_key=subjects.requests)  # fmt: skip
            replies, dead = got[subjects.results], got[subjects.dead]
            await wait_for(lambda: asyncio.sleep(0, len(replies) >= 3 and len(dead) >= 1))
            await wait_for(lambda: asyncio.sleep(0, len(direct) == 1))
            answers = [json.loads(m.body) for m in replies]
            accepted = [a for a in answers if a["type"].endswith(".accepted")]
            await gql.wait_until_finished(accepted[0]["data"]["taskId"])
            await wait_for(lambda: asyncio.sleep(0, len(got[f"{subjects.events}.#"]) >= 6))
        await exchange.delete()
        await channel.queue_delete(subjects.requests)
    finally:
        await connection.close()

    events = got[f"{subjects.events}.#"]
    mine = [m for m in events if json.loads(m.body)["subject"] == task_id]
    assert [m.message_id for m in mine] == [r.message_id for r in rows if r.task_id == task_id]
    seqs = []
    for message in mine:
        assert message.content_type == CONTENT_TYPE
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        event = from_http_event(HTTPMessage({"content-type": CONTENT_TYPE}, message.body))
        assert event.get_id() == message.message_id == f"{task_id}:{event.get_data()['seq']}"
        name = event.get_type().removeprefix("dev.postassist.")
        assert message.routing_key == f"{subjects.events}.{name}"
        seqs.append(event.get_data()["seq"])
    assert seqs == sorted(seqs) and len(seqs) == 3
    untimed = [{k: v for k, v in reply.items() if k != "time"} for reply in accepted]
    assert len(accepted) == 2 and untimed[0] == untimed[1], "the repeat gets the same reply"
    (refused,) = [a for a in answers if a["causationid"] == "req-3"]
    assert [e["field"] for e in refused["data"]["errors"]] == ["replyto"], "not on events"
    (own,) = [json.loads(m.body) for m in direct]  # the broker's reply_to, default exchange
    assert own["causationid"] == "req-2" and own["data"]["errors"][0]["code"] == "FORBIDDEN"
    assert accepted[0]["type"] == "dev.postassist.request.accepted"
    (letter,) = [json.loads(m.body) for m in dead]
    assert letter["type"] == DEAD_LETTER_TYPE and letter["data"]["body"] == "<not json/>"
    assert letter["data"]["reason"].startswith("not JSON")
    other = {json.loads(m.body)["subject"] for m in events} - {task_id}
    assert other == {accepted[0]["data"]["taskId"]}, "the request's task, and no second one"
