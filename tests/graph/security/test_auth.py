"""Principals and ownership on a real uvicorn server and a real SQLite file: API keys
over HTTP and in `connection_init` on both WebSocket protocols, another principal's
task is NOT_FOUND everywhere (queries, subscriptions, cancel, retry, pause, resume,
review, revisions, batches), admins see all,
the connection cap per principal, and the mutation rate limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.app import create_app
from graph.cli.client import TASK_PROGRESS
from graph.settings import Settings
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id owner } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}
TASK = "query($id: ID!) { task(id: $id) { id status } }"
TASKS = "{ tasks(first: 50) { totalCount edges { node { id owner } } } }"
LOGS = "query($id: ID!) { agentLogs(taskId: $id) { totalCount } }"
CANCEL = "mutation($id: ID!) { cancelTask(id: $id) { id status } }"
RETRY = "mutation($id: ID!) { retryTask(id: $id) { id status } }"
PAUSE = "mutation($id: ID!) { pauseTask(id: $id) { id status } }"
RESUME = "mutation($id: ID!) { resumeTask(id: $id) { id status } }"
REVIEW = "mutation($id: ID!) { reviewTask(id: $id, decision: APPROVE) { id status } }"
REVISE = """mutation($id: ID!) { revisePost(taskId: $id, feedback: "Shorter.") { id } }"""
HISTORY = "query($id: ID!) { task(id: $id) { history { id } } }"
BATCH = """mutation($input: GeneratePostInput!) { generatePosts(inputs: [$input]) { batchId } }"""
BATCH_TASKS = "query($b: ID!) { tasks(batchId: $b) { totalCount } }"
BATCH_PROGRESS = "subscription($b: ID!) { batchProgress(batchId: $b) { id status } }"
PROTOCOLS = ("graphql-transport-ws", "graphql-ws")


async def make_keys(database_url: str) -> dict[str, str]:
    """Keys alice, bob, admin (an admin) and revoked (revoked at once); their tokens."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    tokens = {}
    async with create_session_factory(engine)() as session:
        for name in ("alice", "bob", "admin", "revoked"):
            key, tokens[name] = await keys.create_key(
                session=session, name=name, admin=name == "admin"
            )
        await keys.revoke_key(session=session, key_id=key.id)
    await engine.dispose()
    return tokens


@pytest.fixture
async def tokens(sqlite_url: str) -> dict[str, str]:
    return await make_keys(sqlite_url)


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel, tokens: dict[str, str]) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        follow_poll_seconds=0.5,
        ws_max_connections_per_principal=2,
        rate_limit_mutations="1000/minute",
        auth_cache_seconds=1.0,  # open WebSockets re-check their key every second
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


class Caller:
    """GraphQL over HTTP to the live server as one principal (None: no credentials)."""

    def __init__(self, url: Callable[[str], str], token: str | None) -> None:
        self.url, self.token = url, token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(self, query: str, **variables: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(
                f"http://{self.url('/graphql')}",
                json={"query": query, "variables": variables},
                headers=self.headers,
            )

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.post(query, **variables)
        assert response.status_code == 200, response.text
        return response.json()


def code_of(body: dict[str, Any]) -> str:
    return body["errors"][0]["extensions"]["code"]


async def wait_finished(caller: Caller, task_id: str) -> None:
    async with asyncio.timeout(20):
        while True:
            task = (await caller(TASK, id=task_id))["data"]["task"]
            if task["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                return
            await asyncio.sleep(0.05)


def ws_init(protocol: str, token: str | None) -> str:
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    return json.dumps({"type": "connection_init", "payload": payload})


def ws_subscribe(protocol: str, query: str, variables: dict[str, Any]) -> str:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    return json.dumps(
        {"id": "1", "type": kind, "payload": {"query": query, "variables": variables}}
    )


async def recv(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def test_http_needs_a_valid_key(live_server: Callable[[str], str], tokens: dict) -> None:
    for token in (None, "pa_00000000_wrong", tokens["revoked"], "not-a-jwt"):
        response = await Caller(live_server, token).post(TASKS)
        assert response.status_code == 401, (token, response.text)
        assert code_of(response.json()) == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")
    async with httpx.AsyncClient() as http:
        basic = await http.post(
            f"http://{live_server('/graphql')}",
            json={"query": TASKS},
            headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        )
        assert basic.status_code == 401 and code_of(basic.json()) == "UNAUTHENTICATED"
        # The GraphiQL page holds no data and is served without a key.
        page = await http.get(f"http://{live_server('/graphql')}", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    body = await Caller(live_server, tokens["alice"])(TASKS)
    assert body["data"]["tasks"]["totalCount"] == 0


async def test_another_principals_task_is_not_found_everywhere(
    live_server: Callable[[str], str], tokens: dict[str, str]
) -> None:
    alice, bob = Caller(live_server, tokens["alice"]), Caller(live_server, tokens["bob"])
    admin = Caller(live_server, tokens["admin"])
    created = (await alice(GENERATE, input=INPUT))["data"]["generatePost"]
    task_id = created["id"]
    assert created["owner"].startswith("key:")
    await bob(GENERATE, input=INPUT)

    assert (await alice(TASK, id=task_id))["data"]["task"]["id"] == task_id
    assert (await bob(TASK, id=task_id))["data"]["task"] is None
    listed = {e["node"]["id"] for e in (await bob(TASKS))["data"]["tasks"]["edges"]}
    assert task_id not in listed and len(listed) == 1
    assert (await alice(TASKS))["data"]["tasks"]["totalCount"] == 1
    assert (await admin(TASKS))["data"]["tasks"]["totalCount"] == 2
    for query in (LOGS, CANCEL, RETRY, PAUSE, RESUME, REVIEW, REVISE):
        body = await bob(query, id=task_id)
        assert code_of(body) == "NOT_FOUND", (query, body)
        assert body["errors"][0]["message"] == f"no task with id {task_id}"
    unknown = await bob(CANCEL, id="0" * 32)
    assert unknown["errors"][0]["message"] == f"no task with id {'0' * 32}"  # same answer

    await wait_finished(alice, task_id)
    assert (await alice(LOGS, id=task_id))["data"]["agentLogs"]["totalCount"] > 0
    assert (await admin(LOGS, id=task_id))["data"]["agentLogs"]["totalCount"] > 0
    body = await bob(REVISE, id=task_id)  # finished: still NOT_FOUND, not CONFLICT
    assert code_of(body) == "NOT_FOUND", body
    child = (await alice(REVISE, id=task_id))["data"]["revisePost"]["id"]
    assert [t["id"] for t in (await alice(HISTORY, id=child))["data"]["task"]["history"]] == [
        task_id,
        child,
    ]
    assert (await bob(HISTORY, id=child))["data"]["task"] is None

    batch = (await alice(BATCH, input=INPUT))["data"]["generatePosts"][0]["batchId"]
    assert (await alice(BATCH_TASKS, b=batch))["data"]["tasks"]["totalCount"] == 1
    assert (await bob(BATCH_TASKS, b=batch))["data"]["tasks"]["totalCount"] == 0
    url = f"ws://{live_server('/graphql')}"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(ws_init("graphql-transport-ws", tokens["bob"]))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(ws_subscribe("graphql-transport-ws", BATCH_PROGRESS, {"b": batch}))
        message = await recv(ws)
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else payload["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_websocket_authenticates_at_connection_init(
    live_server: Callable[[str], str], tokens: dict[str, str], protocol: str
) -> None:
    url = f"ws://{live_server('/graphql')}"
    for token in (None, "pa_00000000_wrong"):
        async with websockets.connect(url, subprotocols=[protocol]) as ws:
            await ws.send(ws_init(protocol, token))
            if protocol == "graphql-ws":
                refused = await recv(ws)
                assert refused["type"] == "connection_error"
                assert refused["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws)
            if protocol == "graphql-transport-ws":
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

    task_id = (await Caller(live_server, tokens["alice"])(GENERATE, input=INPUT))["data"][
        "generatePost"
    ]["id"]
    variables = {"taskId": task_id, "afterSeq": 0}
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        await ws.send(ws_init(protocol, tokens["bob"]))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(ws_subscribe(protocol, TASK_PROGRESS, variables))
        message = await recv(ws)
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else payload["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", message
    # Alice, with the key in the upgrade request's header instead of the payload.
    headers = {"Authorization": f"Bearer {tokens['alice']}"}
    async with websockets.connect(url, subprotocols=[protocol], additional_headers=headers) as ws:
        await ws.send(ws_init(protocol, None))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(ws_subscribe(protocol, TASK_PROGRESS, variables))
        first = await recv(ws)
        assert first["type"] in ("next", "data"), first
        assert first["payload"]["data"]["taskProgress"]["seq"] == 1


async def test_task_updates_carry_only_the_callers_tasks(
    live_server: Callable[[str], str], tokens: dict[str, str]
) -> None:
    url = f"ws://{live_server('/graphql')}"
    subscription = "subscription { taskUpdates { id owner status } }"
    alice, bob = Caller(live_server, tokens["alice"]), Caller(live_server, tokens["bob"])
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(ws_init("graphql-transport-ws", tokens["bob"]))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(ws_subscribe("graphql-transport-ws", subscription, {}))
        await asyncio.sleep(0.3)  # subscribed before the tasks start
        alice_task = (await alice(GENERATE, input=INPUT))["data"]["generatePost"]["id"]
        await wait_finished(alice, alice_task)
        bob_task = (await bob(GENERATE, input=INPUT))["data"]["generatePost"]["id"]
        await wait_finished(bob, bob_task)
        seen = set()
        while True:
            update = (await recv(ws))["payload"]["data"]["taskUpdates"]
            seen.add(update["id"])
            if update["id"] == bob_task and update["status"] == "COMPLETED":
                break
    assert seen == {bob_task}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connections_per_principal_are_capped(
    live_server: Callable[[str], str], tokens: dict[str, str], protocol: str
) -> None:
    url = f"ws://{live_server('/graphql')}"
    held = [websockets.connect(url, subprotocols=[protocol]) for _ in range(2)]
    sockets = [await connection.__aenter__() for connection in held]
    try:
        for ws in sockets:
            await ws.send(ws_init(protocol, tokens["alice"]))
            assert (await recv(ws))["type"] == "connection_ack"
        if protocol == "graphql-ws":
            # graphql-ws lets a client init again: that must not count the connection twice.
            await sockets[0].send(ws_init(protocol, tokens["alice"]))
            assert (await recv(sockets[0]))["type"] == "connection_ack"
        async with websockets.connect(url, subprotocols=[protocol]) as third:
            await third.send(ws_init(protocol, tokens["alice"]))
            if protocol == "graphql-ws":
                refused = await recv(third)
                assert refused["payload"]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
                assert refused["payload"]["extensions"]["limit"] == 2
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(third)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4929
            assert closed.value.rcvd.reason == (
                "too many connections: WS_MAX_CONNECTIONS_PER_PRINCIPAL=2"
            )
        async with websockets.connect(url, subprotocols=[protocol]) as other:
            await other.send(ws_init(protocol, tokens["bob"]))  # another principal may
            assert (await recv(other))["type"] == "connection_ack"
    finally:
        await held[0].__aexit__(None, None, None)
    await asyncio.sleep(0.2)
    async with websockets.connect(url, subprotocols=[protocol]) as again:
        await again.send(ws_init(protocol, tokens["alice"]))
        assert (await recv(again))["type"] == "connection_ack"  # the closed one was released
    await held[1].__aexit__(None, None, None)


async def test_an_open_websocket_closes_when_its_key_is_revoked(
    live_server: Callable[[str], str], tokens: dict[str, str], sqlite_url: str
) -> None:
    url = f"ws://{live_server('/graphql')}"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(ws_init("graphql-transport-ws", tokens["bob"]))
        assert (await recv(ws))["type"] == "connection_ack"
        engine = create_engine(sqlite_url)
        async with create_session_factory(engine)() as session:
            bob = next(k for k in await keys.list_keys(session=session) if k.name == "bob")
            await keys.revoke_key(session=session, key_id=bob.id)
        await engine.dispose()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(5):  # the cache (1 s) expires, then the next check
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
