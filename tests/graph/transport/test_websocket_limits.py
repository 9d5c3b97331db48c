"""WebSocket limits on a live uvicorn server: the connection_init deadline on both
protocols, subscriptions per connection, and a fuzz of malformed protocol messages."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from graph.app import create_app
from graph.settings import Settings
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.anyio

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
INIT_TIMEOUT = 0.5
#: Close codes a server may use for a client's mistake; 1011 would be a crash.
CLIENT_CLOSES = {1000, 1002, 1003, 1007, 4400, 4401, 4403, 4408, 4409, 4429}


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        follow_poll_seconds=0.5,
        ws_init_timeout_seconds=INIT_TIMEOUT,
        ws_max_subscriptions=2,
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


def connect(url: Callable[[str], str], protocol: str) -> Any:
    return websockets.connect(f"ws://{url('/graphql')}", subprotocols=[protocol])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_without_connection_init_is_closed(
    live_server: Callable[[str], str], protocol: str
) -> None:
    async with connect(live_server, protocol) as ws:
        start = time.perf_counter()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(INIT_TIMEOUT * 6):
                await ws.recv()
        elapsed = time.perf_counter() - start
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    assert INIT_TIMEOUT * 0.8 <= elapsed < INIT_TIMEOUT * 5


SUBSCRIBE = "subscription { taskUpdates { id } }"


def start_message(protocol: str, op_id: str) -> str:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    return json.dumps({"id": op_id, "type": kind, "payload": {"query": SUBSCRIBE}})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscriptions_per_connection_are_capped(
    live_server: Callable[[str], str], protocol: str
) -> None:
    async with connect(live_server, protocol) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for op_id in ("1", "2", "3"):
            await ws.send(start_message(protocol, op_id))
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
        assert message["type"] == "error" and message["id"] == "3"


MALFORMED: list[Any] = [
    42,
    None,
    "text",
    [],
    [1, 2],
    {},
    {"type": 5},
    {"type": "nope"},
    {"type": "connection_init", "payload": 5},
    {"type": "connection_init", "payload": "x"},
    {"type": "subscribe"},
    {"type": "subscribe", "id": 5, "payload": {"query": SUBSCRIBE}},
    {"type": "subscribe", "id": "1", "payload": None},
    {"type": "subscribe", "id": "1", "payload": {"query": 5}},
    {"type": "subscribe", "id": "1", "payload": {"query": "{", "variables": 3}},
    {"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIBE, "variables": []}},
    {"type": "start"},
    {"type": "start", "id": "1"},
    {"type": "start", "id": ["x"], "payload": {"query": SUBSCRIBE}},
    {"type": "start", "id": "1", "payload": {"query": "subscription { nope }"}},
    {"type": "start", "id": "1", "payload": {"query": SUBSCRIBE, "operationName": 1}},
    {"type": "stop"},
    {"type": "stop", "id": {"a": 1}},
    {"type": "complete", "id": None},
    {"type": "ping", "payload": 5},
    {"type": "pong"},
    {"type": "connection_terminate"},
]


def garbage(rng: random.Random) -> str | bytes:
    choice = rng.random()
    if choice < 0.6:
        return json.dumps(rng.choice(MALFORMED))
    if choice < 0.8:
        return "".join(
            rng.choice('{}[]":,type subscribe\x00\ud7ff') for _ in range(rng.randint(0, 40))
        )
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fuzz_malformed_protocol_messages(
    live_server: Callable[[str], str], protocol: str
) -> None:
    rng = random.Random(8)
    sent = connections = 0
    while sent < 300:
        connections += 1
        async with connect(live_server, protocol) as ws:
            if rng.random() < 0.5:
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            try:
                for _ in range(rng.randint(1, 10)):
                    await ws.send(garbage(rng))
                    sent += 1
                async with asyncio.timeout(0.3):
                    while True:
                        await ws.recv()
            except TimeoutError:
                pass
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 1006
                assert code in CLIENT_CLOSES, (protocol, code, closed)
    print(f"\n{protocol}: {sent} malformed messages over {connections} connections")
    async with httpx.AsyncClient() as http:
        health = await http.post(
            f"http://{live_server('/graphql')}", json={"query": "{ health { status } }"}
        )
    assert health.json()["data"]["health"]["status"] == "ok"
