"""/metrics after a scripted generation: every postassist_* family present with its
labels, the run's counts added, the scrape-time gauges read from the database, the
WebSocket and subscription gauges following a live connection; METRICS_TOKEN and
METRICS_ENABLED."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from graph.app import create_app
from graph.settings import Settings
from tests.fakes import scripted
from tests.graph.api.test_api import generate
from tests.graph.conftest import GQL, free_port, serve

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(seen: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in seen.items() if n == name and want <= set(ls))


def label_values(seen: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls), _ in seen.items() if n == name and label in dict(ls)}


async def until(check: Any, within: float = 5.0) -> None:
    """Poll `check()` (async, truthy when done) until it holds; TimeoutError otherwise."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - a scrape, not an event, tells
            await asyncio.sleep(0.02)


async def scrape(gql: GQL, **headers: str) -> Samples:
    response = await gql.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_a_run_shows_in_every_family_with_its_labels(gql: GQL) -> None:
    before = await scrape(gql)
    task_id = await generate(gql)
    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
    await asyncio.sleep(0.05)  # the observer closes right after the terminal event
    after = await scrape(gql)

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    finished = "postassist_tasks_finished_total"
    assert added(finished, status="COMPLETED", error_code="none") == 1
    assert added("postassist_events_appended_total", kind="TASK_STATUS") >= 2
    assert added("postassist_events_appended_total", kind="AGENT_FINISHED") >= 3
    assert added("postassist_events_published_total", channel="task") >= 1
    assert (
        added("postassist_task_run_duration_seconds_count", kind="GENERATE", outcome="completed")
        == 1
    )
    assert added("postassist_task_pickup_latency_seconds_count", kind="GENERATE") == 1
    agents = label_values(after, "postassist_agent_duration_seconds_count", "agent")
    assert {"paper_researcher", "linkedin_creator", "style_checker"} <= agents, agents
    assert (
        added(
            "postassist_agent_duration_seconds_count", agent="linkedin_creator", outcome="finished"
        )
        >= 1
    )
    calls = added("postassist_llm_calls_total")
    assert calls >= 3
    assert added("postassist_llm_call_duration_seconds_count") == calls
    assert added("postassist_llm_tokens_total", type="input") > 0
    assert added("postassist_llm_tokens_total", type="output") > 0
    assert label_values(after, "postassist_llm_tokens_total", "agent") >= {"linkedin_creator"}
    # counted at scrape time from the database, a read reused for REUSE_SECONDS (1 s):
    # the scrape before the run may still answer for a run that took less
    latest: Samples = after

    async def counted() -> bool:
        nonlocal latest
        latest = await scrape(gql)
        return value(latest, "postassist_tasks", status="COMPLETED") >= 1

    await until(counted, within=5.0)
    assert label_values(latest, "postassist_tasks", "status") >= {"PENDING", "RUNNING", "FAILED"}
    assert ("postassist_queue_depth", ()) in latest
    assert ("postassist_reviews_waiting", ()) in latest


async def test_the_queue_and_reviews_waiting_are_the_databases_counts(gql: GQL, app: Any) -> None:
    from db.models import Task

    services = app.state.services
    async with services.session_factory() as session:
        session.add_all([Task(paper_title="t", status="AWAITING_REVIEW") for _ in range(2)])
        await session.commit()
    await asyncio.sleep(1.1)  # past the counts' reuse (graph.telemetry.metrics.REUSE_SECONDS)
    seen = await scrape(gql)
    assert value(seen, "postassist_reviews_waiting") == 2
    assert value(seen, "postassist_tasks", status="AWAITING_REVIEW") == 2


async def _subscriptions_at_least(current: Any, n: int) -> bool:
    seen = await current()
    return value(seen, "postassist_active_subscriptions", transport="websocket") >= n


@pytest.fixture
def open_app(sqlite_url: str) -> Any:
    settings = Settings(database_url=sqlite_url, _env_file=None)
    return create_app(settings, model_factory=scripted)


async def test_websocket_connections_and_subscriptions_follow_a_live_client(open_app: Any) -> None:
    async with serve(open_app, free_port()) as host, httpx.AsyncClient() as http:

        async def current() -> Samples:
            return samples((await http.get(f"http://{host}/metrics")).text)

        base = await current()
        connections = value(base, "postassist_websocket_connections")
        async with websockets.connect(
            f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = "subscription { taskUpdates { id status } }"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            await until(
                lambda: _subscriptions_at_least(current, 1),
            )
            assert value(await current(), "postassist_websocket_connections") == connections + 1

        async def closed() -> bool:
            return value(await current(), "postassist_websocket_connections") <= connections

        await until(closed)
        assert value(await current(), "postassist_active_subscriptions", transport="websocket") == 0


@pytest.fixture
async def keyed_metrics(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=sqlite_url, metrics_token="s3cret", run_worker=False, _env_file=None
    )
    app = create_app(settings, model_factory=scripted)
    async with LifespanManager(app, startup_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def test_with_a_metrics_token_a_scrape_needs_it(keyed_metrics: httpx.AsyncClient) -> None:
    assert (await keyed_metrics.get("/metrics")).status_code == 401
    wrong = await keyed_metrics.get("/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "Bearer" in wrong.headers["www-authenticate"]
    right = await keyed_metrics.get("/metrics", headers={"authorization": "Bearer s3cret"})
    assert right.status_code == 200 and "postassist_tasks{" in right.text


async def test_metrics_disabled_is_no_route_and_any_host_may_scrape(sqlite_url: str) -> None:
    common: dict[str, Any] = {"database_url": sqlite_url, "run_worker": False, "_env_file": None}
    off = create_app(Settings(metrics_enabled=False, **common), model_factory=scripted)
    on = create_app(Settings(**common), model_factory=scripted)
    for app, expected in ((off, 404), (on, 200)):
        async with LifespanManager(app, startup_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            # Prometheus scrapes by address: a Host outside ALLOWED_HOSTS still gets metrics
            async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3") as c:
                assert (await c.get("/metrics")).status_code == expected
