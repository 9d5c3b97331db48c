"""Live push through a Redis outage: a real uvicorn server, a real Redis of the test's
own (started, killed and started again on the same port, so the shared Redis on 6379 is
left alone), real WebSocket clients, and tasks that run while Redis is down."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from graph.app import create_app
from graph.cli.client import TASK_PROGRESS
from graph.settings import Settings
from tests.db.redis_process import RedisProcess
from tests.fakes import ScriptedChatModel, scripted
from tests.graph.conftest import FINISH_WITHIN

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone.",
}
UPDATES = "subscription { taskUpdates { id status } }"
TASK = "query($id: ID!) { task(id: $id) { status lastSeq } }"
LOG = """query($id: ID!) { agentLogs(taskId: $id, first: 100) {
  edges { node { seq kind status } } } }"""
HEALTH = "{ health { status bus } }"
#: The issue's bound: subscriptions work again within this many seconds of Redis answering.
RECOVERY_SECONDS = 5.0
#: Far longer than the scenario: with it, an event only arrives in time through the bus
#: (or the poll the event log switches to while the bus is down), never the slow re-read.
SLOW_POLL_SECONDS = 60.0
#: How long the test waits for what must arrive (a timeout, not a measurement: far
#: above the 1 s poll of a bus that is down, far below SLOW_POLL_SECONDS).
ARRIVES_WITHIN = 10.0


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds every model call until set (tasks stay RUNNING meanwhile)."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def model(gate: threading.Event) -> ScriptedChatModel:
    inner = scripted(verification_order=["style_checker"]).handler

    def held(messages: Any, tools: list[str]) -> Any:
        gate.wait(FINISH_WITHIN)
        return inner(messages, tools)

    return ScriptedChatModel(handler=held, calls=[])


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel, redis_server: RedisProcess) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        broadcast_url=redis_server.url,
        follow_poll_seconds=SLOW_POLL_SECONDS,
        rate_limit_mutations="10000/minute",
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


class Subscription:
    """One operation on its own graphql-transport-ws connection; every frame the server
    sends for it is kept in `frames`."""

    def __init__(self, url: str, query: str, variables: dict[str, Any]) -> None:
        self.url, self.query, self.variables = url, query, variables
        self.frames: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def open(self) -> Subscription:
        self._ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"])
        await self._ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await self._ws.recv())["type"] == "connection_ack"
        payload = {"query": self.query, "variables": self.variables}
        await self._ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for raw in self._ws:
            frame = json.loads(raw)
            if frame["type"] in ("ping", "pong"):
                continue
            self.frames.append(frame)
            if frame["type"] in ("complete", "error"):
                return

    @property
    def completed(self) -> bool:
        return bool(self.frames) and self.frames[-1]["type"] == "complete"

    def items(self, field: str) -> list[dict[str, Any]]:
        """The `field` of every `next` frame, in order."""
        return [f["payload"]["data"][field] for f in self.frames if f["type"] == "next"]

    def problems(self) -> list[dict[str, Any]]:
        """Frames that are neither data nor the final `complete`."""
        return [
            f
            for f in self.frames
            if f["type"] not in ("next", "complete") or f.get("payload", {}).get("errors")
        ]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, within: float = ARRIVES_WITHIN
) -> None:
    """Wait until `condition()` holds, checking every 0.05 s; fail after `within` s."""
    try:
        async with asyncio.timeout(within):
            while not await condition():  # noqa: ASYNC110 - state seen over HTTP/WebSocket
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {within} s: {what}")


class Api:
    """GraphQL over HTTP and the readiness probe of the live server."""

    def __init__(self, url: Callable[[str], str]) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=10)

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = (
            await self.http.post(
                f"http://{self.url('/graphql')}", json={"query": query, "variables": variables}
            )
        ).json()
        assert "errors" not in body, body
        return body["data"]

    async def generate(self) -> str:
        return (await self(GENERATE, input=INPUT))["generatePost"]["id"]

    async def status(self, task_id: str) -> str:
        return (await self(TASK, id=task_id))["task"]["status"]

    async def events(self, task_id: str) -> list[dict[str, Any]]:
        edges = (await self(LOG, id=task_id))["agentLogs"]["edges"]
        return [e["node"] for e in edges]

    async def status_changes(self, task_id: str) -> list[tuple[str, str]]:
        """`(task id, status)` of each stored TASK_STATUS event, in order."""
        events = await self.events(task_id)
        return [(task_id, e["status"]) for e in events if e["kind"] == "TASK_STATUS"]

    async def bus_ready(self) -> bool:
        report = (await self.http.get(f"http://{self.url('/readyz')}")).json()
        return bool(report["checks"]["bus"]["ok"])

    def subscribe(self, query: str, **variables: Any) -> Awaitable[Subscription]:
        return Subscription(f"ws://{self.url('/graphql')}", query, variables).open()


@pytest.fixture
async def api(live_server: Callable[[str], str]) -> AsyncIterator[Api]:
    client = Api(live_server)
    yield client
    await client.http.aclose()


async def test_every_subscription_survives_a_redis_restart(
    api: Api, redis_server: RedisProcess, gate: threading.Event
) -> None:
    opened: list[Subscription] = []

    async def subscribe(query: str, **variables: Any) -> Subscription:
        opened.append(await api.subscribe(query, **variables))
        return opened[-1]

    async def progress(task_id: str) -> Subscription:
        return await subscribe(TASK_PROGRESS, taskId=task_id, afterSeq=0)

    async def updates() -> Subscription:
        subscription = await subscribe(UPDATES)
        await asyncio.sleep(0.5)  # registered before the next status change, as in test_websocket
        return subscription

    async def running(*task_ids: str) -> bool:
        return all([await api.status(t) == "RUNNING" for t in task_ids])

    async def completed(*task_ids: str) -> bool:
        return all([await api.status(t) == "COMPLETED" for t in task_ids])

    def all_done(*subscriptions: Subscription) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return all(s.completed or s.problems() for s in subscriptions)

        return check

    def got(subscription: Subscription, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(subscription.items("taskUpdates")) >= count or bool(subscription.problems())

        return check

    try:
        # Before the outage: two tasks held RUNNING, followed by both kinds of subscription.
        before = await updates()
        a, b = await api.generate(), await api.generate()
        await until(lambda: running(a, b), "tasks a and b run", FINISH_WITHIN)
        progress_a, progress_b = await progress(a), await progress(b)

        # The outage: Redis is killed; the server notices and says so.
        redis_server.kill()
        await until(lambda: _not(api.bus_ready), "readiness reports the bus down")
        assert (await api(HEALTH))["health"] == {"status": "degraded", "bus": False}
        assert await api.status_changes(a) == [(a, "RUNNING")]
        during = await updates()
        c = await api.generate()
        progress_c = await progress(c)
        gate.set()
        await until(lambda: completed(a, b, c), "tasks a, b, c complete", FINISH_WITHIN)
        # ... and followers of both kinds got everything from the database meanwhile.
        await until(all_done(progress_a, progress_b, progress_c), "progress, bus down")
        await until(got(before, 6), "taskUpdates opened before the outage, bus down")
        await until(got(during, 4), "taskUpdates opened during the outage, bus down")
        assert not redis_server.answers()

        # Redis again, on the same port: subscriptions old and new work within 5 s.
        redis_server.start()  # returns once Redis answers PING
        await until(api.bus_ready, "readiness reports the bus up again", RECOVERY_SECONDS)
        assert (await api(HEALTH))["health"]["bus"] is True
        after = await updates()
        d = await api.generate()
        progress_d = await progress(d)
        await until(lambda: completed(d), "task d completes", FINISH_WITHIN)
        await until(all_done(progress_d), "progress of a task started after the outage")
        for subscription, count in ((before, 8), (during, 6), (after, 2)):
            await until(got(subscription, count), "status changes of task d")
    finally:
        gate.set()
        for subscription in opened:
            await subscription.close()

    for subscription in opened:
        assert subscription.problems() == [], subscription.query
    followers = {a: progress_a, b: progress_b, c: progress_c, d: progress_d}
    for task_id, subscription in followers.items():
        stored = [(e["seq"], e["kind"]) for e in await api.events(task_id)]
        received = [(e["seq"], e["kind"]) for e in subscription.items("taskProgress")]
        assert received == stored  # every event once, in order, ending with the terminal one
        assert subscription.completed
    changes = {t: await api.status_changes(t) for t in (a, b, c, d)}
    for task_id in (a, b, c, d):
        assert [status for _, status in changes[task_id]] == ["RUNNING", "COMPLETED"]
    expected = {
        "before": changes[a] + changes[b] + changes[c] + changes[d],
        "during": changes[a][1:] + changes[b][1:] + changes[c] + changes[d],
        "after": changes[d],
    }
    for name, subscription in (("before", before), ("during", during), ("after", after)):
        received = [(u["id"], u["status"]) for u in subscription.items("taskUpdates")]
        assert sorted(received) == sorted(expected[name]), name  # each change exactly once
        for task_id in (a, b, c, d):  # and each task's changes in order
            mine = [change for change in received if change[0] == task_id]
            assert mine == [change for change in expected[name] if change[0] == task_id], name


async def _not(check: Callable[[], Awaitable[bool]]) -> bool:
    return not await check()
