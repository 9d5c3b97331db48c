"""Webhooks (issue 16 part 1) end to end: the app with its worker on a real SQLite file
(and, for the retries, a real PostgreSQL database) and the scripted model, delivering
to a real HTTP receiver served by uvicorn on loopback (so `WEBHOOK_ALLOW_PRIVATE=true`
here, except where the guard is the test).

A receiver that fails twice then answers 200 gets one `webhook-id` three times, each
signature verifying with the README's snippet, and the log shows the three attempts; a
restart of the service between two attempts still delivers; a redirect is not
followed; a private address is refused without `WEBHOOK_ALLOW_PRIVATE`; an
internationalised host goes out in its ASCII form; a task's `callbackUrl` is signed
with its `callbackSecret`, which only its owner reads (an admin's revision gets neither);
redelivery and deletion behave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.app import create_app
from graph.settings import Settings
from tests.fakes import scripted
from tests.graph.conftest import GQL, LIFESPAN_TIMEOUT, free_port, serve

pytestmark = pytest.mark.anyio

GENERATE = """mutation($input: GeneratePostInput!) {
  generatePost(input: $input) { id callbackUrl callbackSecret }
}"""
REGISTER = """mutation($url: String!, $events: [WebhookEvent!], $secret: String) {
  registerWebhook(url: $url, events: $events, secret: $secret) {
    secret webhook { id url events }
  }
}"""
DELIVERIES = """query($webhook: ID, $task: ID) {
  webhookDeliveries(webhookId: $webhook, taskId: $task) {
    id webhookId taskId seq event url status attemptCount nextAttemptAt
    attempts { attempt statusCode latencyMs error }
  }
}"""
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}
#: Seconds a delivery may take to reach its final state here (retries 0.2 s apart).
DELIVERED_WITHIN = 30.0


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The README's receiver check, as a receiver would run it."""
    from standardwebhooks.webhooks import Webhook

    return Webhook(secret).verify(body, headers)


@dataclass
class Receiver:
    """A webhook receiver: records every request; answers from `answers` (status codes,
    popped first to last; 200 once they run out). A 302 answers with a Location."""

    answers: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        self.received.append((request.url.path, dict(request.headers), await request.body()))
        code = self.answers.pop(0) if self.answers else 200
        headers = {"location": self.url + "/elsewhere"} if code == 302 else {}
        return Response("not now" if code >= 400 else "ok", status_code=code, headers=headers)

    def on(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for got, headers, body in self.received if got == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    routes = [Route("/{path:path}", found.endpoint, methods=["POST"])]
    async with serve(Starlette(routes=routes), free_port()) as host:
        found.url = f"http://{host}"
        yield found


def settings_of(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "rate_limit_mutations": "10000/minute",
        "webhook_allow_private": True,
        "webhook_retry_base_seconds": 0.2,
        "queue_poll_seconds": 0.1,
    }
    return Settings(**{**values, **overrides}, _env_file=None)


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[GQL]:
    app = create_app(settings, model_factory=lambda: scripted(verification_order=["style_checker"]))
    async with LifespanManager(
        app, startup_timeout=LIFESPAN_TIMEOUT, shutdown_timeout=LIFESPAN_TIMEOUT
    ) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield GQL(client)


TASK_SECRET = "query($id: ID!) { task(id: $id) { callbackSecret } }"


async def data_as(gql: GQL, headers: dict[str, str], query: str, **variables: Any) -> Any:
    response = await gql.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def finished_as(gql: GQL, headers: dict[str, str], task_id: str) -> None:
    async def done() -> bool:
        task = await data_as(
            gql, headers, "query($id: ID!) { task(id: $id) { status } }", id=task_id
        )
        return task["task"]["status"] in ("COMPLETED", "FAILED", "CANCELLED")

    await wait_for(done)


async def data_of(gql: GQL, query: str, **variables: Any) -> dict[str, Any]:
    body = await gql(query, **variables)
    assert "errors" not in body, body
    return body["data"]


async def wait_for(check: Callable[[], Any], within: float = DELIVERED_WITHIN) -> Any:
    async with asyncio.timeout(within):
        while not (found := await check()):  # noqa: ASYNC110 - polls the API, as a client would
            await asyncio.sleep(0.05)
    return found


async def attempted(gql: GQL, webhook_id: str) -> dict[str, Any] | None:
    """The webhook's one delivery once its first attempt is recorded."""
    rows = (await data_of(gql, DELIVERIES, webhook=webhook_id))["webhookDeliveries"]
    return rows[0] if rows and rows[0]["attemptCount"] >= 1 else None


async def final_deliveries(gql: GQL, **where: Any) -> list[dict[str, Any]]:
    """The deliveries matching `where` once none is PENDING (and there is one)."""

    async def ended() -> list[dict[str, Any]] | None:
        rows = (await data_of(gql, DELIVERIES, **where))["webhookDeliveries"]
        return rows if rows and all(r["status"] != "PENDING" for r in rows) else None

    return await wait_for(ended)


async def test_a_failing_receiver_gets_one_webhook_id_three_times_and_the_log_shows_it(
    database_url: str, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    async with service(settings_of(database_url)) as gql:
        registered = (
            await data_of(gql, REGISTER, url=receiver.url + "/hook", events=["TASK_COMPLETED"])
        )["registerWebhook"]
        secret, hook = registered["secret"], registered["webhook"]
        assert secret.startswith("whsec_") and hook["events"] == ["TASK_COMPLETED"]
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
        (delivery,) = await final_deliveries(gql, webhook=hook["id"])

    assert delivery["status"] == "SUCCEEDED" and delivery["event"] == "TASK_COMPLETED"
    assert delivery["taskId"] == task_id and delivery["attemptCount"] == 3
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 503, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    assert delivery["attempts"][0]["error"].startswith("HTTP 500")
    assert delivery["attempts"][2]["error"] is None
    assert all(a["latencyMs"] > 0 for a in delivery["attempts"])
    sent = receiver.on("/hook")
    assert len(sent) == 3
    assert {headers["webhook-id"] for headers, _ in sent} == {delivery["id"]}
    bodies = [verify(secret, headers, body) for headers, body in sent]
    assert bodies[0] == bodies[2], "the body is fixed when the event commits"
    body = bodies[0]
    assert body["type"] == "task.completed"
    assert body["data"]["taskId"] == task_id and body["data"]["status"] == "COMPLETED"
    assert body["data"]["post"]["content"] and body["data"]["seq"] == delivery["seq"]
    assert body["data"]["approved"] is not None and "usage" in body["data"]
    with pytest.raises(Exception, match="signature"):
        verify("whsec_" + "A" * 44, sent[0][0], sent[0][1])


async def test_a_restart_between_two_attempts_still_delivers(
    sqlite_url: str, receiver: Receiver
) -> None:
    receiver.answers = [500]
    slow = settings_of(sqlite_url, webhook_retry_base_seconds=3.0)
    async with service(slow) as gql:
        hook = (
            await data_of(gql, REGISTER, url=receiver.url + "/hook", events=["TASK_COMPLETED"])
        )["registerWebhook"]["webhook"]
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        pending = await wait_for(lambda: attempted(gql, hook["id"]))
        assert pending["status"] == "PENDING" and pending["nextAttemptAt"] is not None
    assert len(receiver.on("/hook")) == 1, "stopped before the retry was due"
    async with service(slow) as gql:
        (delivery,) = await final_deliveries(gql, webhook=hook["id"])
    assert delivery["status"] == "SUCCEEDED" and delivery["attemptCount"] == 2
    assert [h["webhook-id"] for h, _ in receiver.on("/hook")] == [delivery["id"]] * 2


async def test_a_redirect_is_not_followed_and_a_redelivery_continues_the_count(
    sqlite_url: str, receiver: Receiver
) -> None:
    receiver.answers = [302, 302]
    redeliver = """mutation($id: ID!) {
      redeliverWebhook(deliveryId: $id) { id status attemptCount }
    }"""
    async with service(settings_of(sqlite_url, webhook_max_attempts=2)) as gql:
        hook = (await data_of(gql, REGISTER, url=receiver.url + "/hook"))["registerWebhook"]
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        (failed,) = await final_deliveries(gql, task=task_id)
        assert failed["status"] == "FAILED" and failed["attemptCount"] == 2
        assert "redirect" in failed["attempts"][-1]["error"]
        assert failed["attempts"][-1]["statusCode"] == 302
        assert receiver.on("/elsewhere") == [], "the Location was never requested"
        assert hook["webhook"]["events"] == [
            "AWAITING_REVIEW",
            "TASK_COMPLETED",
            "TASK_FAILED",
            "TASK_CANCELLED",
        ]
        again = (await data_of(gql, redeliver, id=failed["id"]))["redeliverWebhook"]
        assert again["status"] == "PENDING" and again["id"] == failed["id"]
        (done,) = await final_deliveries(gql, task=task_id)
    assert done["status"] == "SUCCEEDED" and done["attemptCount"] == 3
    assert [a["statusCode"] for a in done["attempts"]] == [302, 302, 200]
    assert {h["webhook-id"] for h, _ in receiver.on("/hook")} == {failed["id"]}


async def test_a_callback_url_is_signed_with_the_tasks_secret(
    sqlite_url: str, receiver: Receiver
) -> None:
    async with service(settings_of(sqlite_url)) as gql:
        created = (
            await data_of(gql, GENERATE, input={**INPUT, "callbackUrl": receiver.url + "/cb"})
        )["generatePost"]
        secret = created["callbackSecret"]
        assert created["callbackUrl"] == receiver.url + "/cb" and secret.startswith("whsec_")
        await gql.wait_until_finished(created["id"])
        (delivery,) = await final_deliveries(gql, task=created["id"])
        revise = """mutation($id: ID!) {
          revisePost(taskId: $id, feedback: "Shorter, please.") { id callbackUrl callbackSecret }
        }"""
        revision = (await data_of(gql, revise, id=created["id"]))["revisePost"]
        await gql.wait_until_finished(revision["id"])
    assert delivery["webhookId"] is None and delivery["status"] == "SUCCEEDED"
    # the revision's own task.completed may reach /cb too: pick the first task's
    (headers, body), *_ = [
        (h, b) for h, b in receiver.on("/cb") if h["webhook-id"] == delivery["id"]
    ]
    assert verify(secret, headers, body)["data"]["taskId"] == created["id"]
    assert revision["callbackUrl"] == created["callbackUrl"]
    assert revision["callbackSecret"] == secret, "one secret per revision chain"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:10.0.0.1]/hook",
        "http://10.1.2.3/hook",
    ],
)
async def test_a_private_address_is_refused_without_allow_private(
    sqlite_url: str, url: str
) -> None:
    async with service(settings_of(sqlite_url, webhook_allow_private=False)) as gql:
        body = await gql(REGISTER, url=url)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "url"}, body
        assert "not a public address" in body["errors"][0]["message"]
        body = await gql(GENERATE, input={**INPUT, "callbackUrl": url})
        assert body["errors"][0]["extensions"]["field"] == "callbackUrl", body
        listed = await data_of(gql, "{ webhooks { id } tasks { totalCount } }")
    assert listed == {"webhooks": [], "tasks": {"totalCount": 0}}, "nothing was stored"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "secret": "hunter2"}, "secret"),
        ({"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "A" * 8}, "secret"),
        ({"url": "http://127.0.0.1:9/hook", "events": []}, "events"),
        ({"url": "http://no-such-host.invalid/hook"}, "url"),
    ],
)
async def test_bad_webhook_arguments_name_their_field(
    sqlite_url: str, arguments: dict[str, Any], field: str
) -> None:
    async with service(settings_of(sqlite_url)) as gql:
        body = await gql(REGISTER, **arguments)
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, body


async def test_an_internationalised_host_is_sent_in_its_ascii_form(
    sqlite_url: str, receiver: Receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    async with service(settings_of(sqlite_url)) as gql:
        # Fullwidth letters: IDNA maps them to "localhost" (a real IDN, bücher.de, goes
        # the same way to its xn-- form).
        url = f"http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{port}/idn"
        await data_of(gql, REGISTER, url=url)
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        (delivery,) = await final_deliveries(gql, task=task_id)
    assert delivery["status"] == "SUCCEEDED", delivery
    ((headers, _),) = receiver.on("/idn")
    assert headers["host"] == f"localhost:{port}"


async def test_an_admins_revision_gets_neither_the_callback_nor_its_secret(
    sqlite_url: str, receiver: Receiver
) -> None:
    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        _, alice = await keys.create_key(session=session, name="alice")
        _, admin = await keys.create_key(session=session, name="admin", admin=True)
    await engine.dispose()
    revise = """mutation($id: ID!) {
      revisePost(taskId: $id, feedback: "Shorter.") { id owner callbackUrl callbackSecret }
    }"""
    async with service(settings_of(sqlite_url, auth_cache_seconds=0.0)) as gql:
        as_alice = {"Authorization": f"Bearer {alice}"}
        as_admin = {"Authorization": f"Bearer {admin}"}
        created = (
            await data_as(gql, as_alice, GENERATE, input={**INPUT, "callbackUrl": receiver.url})
        )["generatePost"]
        await finished_as(gql, as_alice, created["id"])
        seen = await data_as(gql, as_admin, TASK_SECRET, id=created["id"])
        revision = (await data_as(gql, as_admin, revise, id=created["id"]))["revisePost"]
        await finished_as(gql, as_admin, revision["id"])
        hooks = await data_as(gql, as_admin, "{ webhooks { id } }")
        registered = await data_as(gql, as_alice, REGISTER, url=receiver.url + "/alice")
        alice_hooks = await data_as(gql, as_alice, "{ webhooks { id } }")
        admin_view = await gql.client.post(
            "/graphql",
            json={
                "query": DELIVERIES,
                "variables": {"webhook": registered["registerWebhook"]["webhook"]["id"]},
            },
            headers=as_admin,
        )
    assert seen["task"]["callbackSecret"] is None, "only the owner reads it"
    assert revision["callbackUrl"] is None and revision["callbackSecret"] is None
    assert hooks == {"webhooks": []} and len(alice_hooks["webhooks"]) == 1
    assert admin_view.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_deleting_a_webhook_ends_its_retries(sqlite_url: str, receiver: Receiver) -> None:
    receiver.answers = [500] * 50
    fast = settings_of(sqlite_url, webhook_retry_base_seconds=0.5)
    async with service(fast) as gql:
        hook = (await data_of(gql, REGISTER, url=receiver.url + "/hook"))["registerWebhook"]
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        await wait_for(lambda: attempted(gql, hook["webhook"]["id"]))
        delete = "mutation($id: ID!) { deleteWebhook(id: $id) { id } }"
        await data_of(gql, delete, id=hook["webhook"]["id"])
        sent = len(receiver.on("/hook"))
        await asyncio.sleep(3.0)  # retries were 0.5 s, 1.5 s apart: several would be due
        (delivery,) = (await data_of(gql, DELIVERIES, task=task_id))["webhookDeliveries"]
    assert len(receiver.on("/hook")) <= sent + 1, "at most the attempt already under way"
    assert delivery["status"] == "FAILED"


async def test_webhooks_are_listed_and_deleted(sqlite_url: str, receiver: Receiver) -> None:
    receiver.answers = [500] * 50
    slow = settings_of(sqlite_url, webhook_retry_base_seconds=30.0)
    async with service(slow) as gql:
        hook = (await data_of(gql, REGISTER, url=receiver.url + "/hook"))["registerWebhook"]
        webhook_id = hook["webhook"]["id"]
        listed = (await data_of(gql, "{ webhooks { id url } }"))["webhooks"]
        assert listed == [{"id": webhook_id, "url": receiver.url + "/hook"}]
        task_id = (await data_of(gql, GENERATE, input=INPUT))["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        await wait_for(lambda: attempted(gql, webhook_id))
        deleted = await data_of(
            gql, "mutation($id: ID!) { deleteWebhook(id: $id) { id } }", id=webhook_id
        )
        assert deleted == {"deleteWebhook": {"id": webhook_id}}
        (delivery,) = (await data_of(gql, DELIVERIES, task=task_id))["webhookDeliveries"]
        assert delivery["status"] == "FAILED" and delivery["nextAttemptAt"] is None
        missing = await gql(DELIVERIES, webhook=webhook_id)
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert (await data_of(gql, "{ webhooks { id } }"))["webhooks"] == []


def test_the_retry_schedule_grows_by_three_with_jitter_and_spans_about_a_day() -> None:
    from agents.integrations.deliveries import MAX_RETRY_WAIT, retry_delay

    for attempt, nominal in [(1, 5.0), (2, 15.0), (3, 45.0), (9, MAX_RETRY_WAIT)]:
        waits = [retry_delay(attempt, 5.0) for _ in range(200)]
        assert nominal * 0.8 <= min(waits) and max(waits) <= nominal * 1.2
        assert max(waits) - min(waits) > nominal * 0.1, "jittered"
    total = sum(retry_delay(n, 5.0, jitter=0.0) for n in range(1, 12))
    assert 20 * 3600 < total < 24 * 3600, total / 3600
