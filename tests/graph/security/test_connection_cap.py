"""The WebSocket connection cap says which limit it is, on a real uvicorn server in
local mode: past WS_MAX_CONNECTIONS_LOCAL, both protocols close with 4929 and a reason
that names the setting (graphql-ws sends a `connection_error` with TOO_MANY_CONNECTIONS
first), the CLI's client reports it as such, and a refused credential closes with 4403
on both protocols (graphql-ws used to close with 1011, "internal error")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import websockets
from fastapi import FastAPI

from graph.app import create_app
from graph.cli.client import GraphQLClient, GraphQLClientError
from graph.settings import Settings
from graph.transport.ws_adapter import (
    MAX_CLOSE_REASON_BYTES,
    TOO_MANY_CONNECTIONS_CLOSE,
    close_reason,
)
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.anyio

PROTOCOLS = ("graphql-transport-ws", "graphql-ws")
LOCAL_CAP = 3
REASON = f"too many connections: WS_MAX_CONNECTIONS_LOCAL={LOCAL_CAP}"
INIT = json.dumps({"type": "connection_init", "payload": {}})


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        ws_max_connections_local=LOCAL_CAP,
        ws_max_connections_per_principal=1,  # not the local principal's cap
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


async def recv(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def close_of(ws: Any) -> tuple[int, str]:
    """The code and reason the server closed `ws` with (no further message)."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.fixture
async def held(live_server: Callable[[str], str]) -> AsyncIterator[list[Any]]:
    """LOCAL_CAP acknowledged connections of the local principal, half of each protocol."""
    url = f"ws://{live_server('/graphql')}"
    async with AsyncExitStack() as stack:
        sockets = []
        for index in range(LOCAL_CAP):
            protocol = PROTOCOLS[index % 2]
            ws = await stack.enter_async_context(websockets.connect(url, subprotocols=[protocol]))
            await ws.send(INIT)
            assert (await recv(ws))["type"] == "connection_ack"
            sockets.append(ws)
        yield sockets


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_cap_closes_with_its_code_and_names_its_setting(
    live_server: Callable[[str], str], held: list[Any], protocol: str
) -> None:
    url = f"ws://{live_server('/graphql')}"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        await ws.send(INIT)
        if protocol == "graphql-ws":
            refused = await recv(ws)
            assert refused["type"] == "connection_error", refused
            extensions = refused["payload"]["extensions"]
            assert extensions == {
                "code": "TOO_MANY_CONNECTIONS",
                "limit": LOCAL_CAP,
                "setting": "WS_MAX_CONNECTIONS_LOCAL",
            }
            assert "WS_MAX_CONNECTIONS_LOCAL" in refused["payload"]["message"]
        assert await close_of(ws) == (TOO_MANY_CONNECTIONS_CLOSE, REASON)
    # Closing one held connection makes room again.
    await held[0].close()
    await asyncio.sleep(0.2)
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        await ws.send(INIT)
        assert (await recv(ws))["type"] == "connection_ack"


async def test_the_client_reports_the_cap_with_its_reason(
    live_server: Callable[[str], str], held: list[Any]
) -> None:
    client = GraphQLClient(f"http://{live_server('/graphql')}")
    with pytest.raises(GraphQLClientError) as refused:
        async for _ in client.subscribe("subscription { taskUpdates { id } }"):
            pass
    assert refused.value.code == "TOO_MANY_CONNECTIONS"
    assert f"close {TOO_MANY_CONNECTIONS_CLOSE} {REASON}" in str(refused.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_refused_credentials_close_with_4403(
    live_server: Callable[[str], str], protocol: str
) -> None:
    url = f"ws://{live_server('/graphql')}"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": "Bearer pa_0_wrong"}}
        await ws.send(json.dumps(init))
        if protocol == "graphql-ws":
            refused = await recv(ws)
            assert refused["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await close_of(ws) == (4403, "Forbidden")


def test_close_reasons_fit_a_close_frame() -> None:
    longest = "too many connections: WS_MAX_CONNECTIONS_PER_PRINCIPAL=10000"
    assert close_reason(longest) == longest
    cut = close_reason("é" * 100)  # 200 bytes
    assert len(cut.encode()) <= MAX_CLOSE_REASON_BYTES and cut == "é" * 61


def test_the_local_principal_has_a_higher_default_cap() -> None:
    settings = Settings(_env_file=None)
    assert settings.ws_max_connections_local == 200
    assert settings.ws_max_connections_per_principal == 20
