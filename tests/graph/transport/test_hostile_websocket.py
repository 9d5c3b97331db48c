"""Issue 13 ("No client can stall it"), rows 1, 8, 11 and the read timeouts of 13, tried
as a hostile client would on a real uvicorn server configured as `postassist serve`
configures it (`graph.cli.serve.server_options`), with real WebSocket and TCP clients:

1. a huge `connection_init` before authentication, and a message past `WS_MAX_SIZE`
   after it, close with 1009;
8. malformed WebSocket messages (JSON nested 100,000 deep, `"query": 123`, a legacy
   `start` of a query or a mutation, text that is not JSON) close with 4400 or are
   answered with BAD_REQUEST, and a client leaving mid-body is one INFO line; none
   logs a traceback;
11. `X-Forwarded-For` from loopback is not believed unless `FORWARDED_ALLOW_IPS` says;
13. a request head or body that never completes gets HTTP 408 and a closed connection.

Each test asserts the refusal and its code; none is timed (waits have generous
deadlines only so that a regression fails instead of hanging)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import websockets
from pydantic import ValidationError

from graph.app import create_app
from graph.cli.serve import server_options
from graph.settings import Settings
from graph.transport.uvicorn_compat import HEAD_MAX_BYTES, header_deadline_protocol
from tests.fakes import ScriptedChatModel
from tests.graph.conftest import free_port

pytestmark = pytest.mark.anyio

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
#: A deadline a regression would otherwise hang on (seconds); never asserted.
WAIT = 15.0
#: The read timeouts of these tests' servers, short so that the tests are quick.
HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5


class Server:
    """A served app: its port and the log records it wrote."""

    def __init__(self, port: int, caplog: pytest.LogCaptureFixture) -> None:
        self.port = port
        self.caplog = caplog
        self.parser = "auto"

    def ws(self, protocol: str) -> Any:
        """A WebSocket client of `protocol` (no compression: sizes are what is sent)."""
        return websockets.connect(
            f"ws://127.0.0.1:{self.port}/graphql",
            subprotocols=[protocol],
            compression=None,
            max_size=None,
        )

    async def raw(self, request: bytes = b"", *, close: bool = False) -> bytes:
        """Send `request` over a new TCP connection and read until the server closes
        it (or shut our side at once, `close`); returns what the server sent."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            await writer.drain()
            if close:
                return b""
            async with asyncio.timeout(WAIT):
                return await reader.read()
        finally:
            writer.close()

    def errors(self) -> list[logging.LogRecord]:
        """Records at ERROR or above, or with a traceback."""
        return [r for r in self.caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    async def logged(self, text: str) -> logging.LogRecord:
        """The first record whose message holds `text`, waiting for it; fails with the
        errors logged meanwhile (a traceback instead of the line)."""
        async with asyncio.timeout(WAIT):
            while True:
                for record in self.caplog.records:
                    if text in record.getMessage():
                        return record
                assert not self.errors(), [r.getMessage() for r in self.errors()]
                await asyncio.sleep(0.02)


@asynccontextmanager
async def serving(
    caplog: pytest.LogCaptureFixture,
    sqlite_url: str,
    model: ScriptedChatModel,
    *,
    options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Server]:
    """Serve the app of `Settings(**overrides)` with `server_options` (and `options`
    over them) on a free port, its log records in `caplog` (no log config of its own)."""
    settings = Settings(
        database_url=sqlite_url,
        port=free_port(),
        http_header_timeout_seconds=HEAD_TIMEOUT,
        http_body_timeout_seconds=BODY_TIMEOUT,
        **overrides,
        _env_file=None,
    )
    app = create_app(settings, model_factory=lambda: model)
    caplog.set_level(logging.INFO)
    kwargs = {**server_options(settings), "log_config": None, "lifespan": "on", **(options or {})}
    server = uvicorn.Server(uvicorn.Config(app, **kwargs))
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    try:
        yield Server(settings.port, caplog)
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def server(
    caplog: pytest.LogCaptureFixture, sqlite_url: str, model: ScriptedChatModel
) -> AsyncIterator[Server]:
    async with serving(caplog, sqlite_url, model) as served:
        yield served


async def closed_with(ws: Any, *messages: str | bytes) -> tuple[int | None, str, list[Any]]:
    """Send `messages`, then read until the server closes: (code, reason, what it sent
    before). The code is None when the connection dropped with no close frame."""
    received: list[Any] = []
    try:
        for message in messages:
            await ws.send(message)
        async with asyncio.timeout(WAIT):
            while True:
                received.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code if frame else None), (frame.reason if frame else ""), received


async def acknowledged(ws: Any, payload: dict[str, Any] | None = None) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
    async with asyncio.timeout(WAIT):
        assert json.loads(await ws.recv())["type"] == "connection_ack"


def start(protocol: str, op_id: str, query: str, **payload: Any) -> str:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    return json.dumps({"id": op_id, "type": kind, "payload": {"query": query, **payload}})


# Row 1: WebSocket message caps


def big_init(keys: int) -> str:
    payload = {"Authorization": "Bearer pa_x_y", **{f"k{i}": i for i in range(keys)}}
    return json.dumps({"type": "connection_init", "payload": payload})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_init_over_ws_init_max_size_closes_before_authentication(
    server: Server, protocol: str
) -> None:
    message = big_init(2_000)  # ~30 KB: under WS_MAX_SIZE, over WS_INIT_MAX_SIZE
    assert 16_384 < len(message) < 262_144
    async with server.ws(protocol) as ws:
        code, reason, received = await closed_with(ws, message)
    assert (code, reason, received) == (1009, "message too big: WS_INIT_MAX_SIZE=16384 bytes", [])
    assert not server.errors()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_issues_16_mb_connection_init_is_refused_by_the_server(
    server: Server, protocol: str
) -> None:
    """850,000 keys (15.9 MB): uvicorn's `ws_max_size` (WS_MAX_SIZE) refuses the frame
    before the app reads it."""
    async with server.ws(protocol) as ws:
        code, _, received = await closed_with(ws, big_init(850_000))
    assert (code, received) == (1009, [])


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("enforced_by", ["server", "app"])
async def test_a_message_over_ws_max_size_after_connection_ack_closes_with_1009(
    caplog: pytest.LogCaptureFixture,
    sqlite_url: str,
    model: ScriptedChatModel,
    protocol: str,
    enforced_by: str,
) -> None:
    """A query that is one long comment: 100 KB is answered, 300 KB (over 256 KiB)
    closes the connection, whether uvicorn enforces WS_MAX_SIZE (`postassist serve`) or
    only the app does (uvicorn's own 16 MiB default, as under another server)."""
    options = {"ws_max_size": 16 * 1024 * 1024} if enforced_by == "app" else {}
    async with serving(caplog, sqlite_url, model, options=options) as served:
        async with served.ws(protocol) as ws:
            await acknowledged(ws)
            await ws.send(start(protocol, "small", "#" + "x" * 100_000 + "\n{ __typename }"))
            async with asyncio.timeout(WAIT):
                assert json.loads(await ws.recv())["id"] == "small"
            code, reason, _ = await closed_with(
                ws, start(protocol, "big", "#" + "x" * 300_000 + "\n{ __typename }")
            )
        assert code == 1009
        if enforced_by == "app":
            assert reason == "message too big: WS_MAX_SIZE=262144 bytes"
        assert not served.errors()


# Row 8: malformed WebSocket messages and a client that leaves mid-body


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("after_ack", "depth"), [(False, 5_000), (True, 100_000)])
async def test_json_nested_past_the_recursion_limit_closes_with_4400(
    server: Server, protocol: str, after_ack: bool, depth: int
) -> None:
    """Today: an unhandled RecursionError and a socket dropped with no close frame."""
    async with server.ws(protocol) as ws:
        if after_ack:
            await acknowledged(ws)
        code, reason, _ = await closed_with(ws, "[" * depth + "]" * depth)
    assert (code, reason) == (4400, "WebSocket message must be valid JSON")
    assert not server.errors()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"id": "1", "type": "subscribe", "payload": {"query": 123}}, "a query string"),
        ({"id": "1", "type": "subscribe", "payload": None}, "a query string"),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "variables": []}}, ""),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "operationName": 5}}, ""),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "extensions": "x"}}, ""),
        ({"id": 5, "type": "subscribe", "payload": {"query": "{ a }"}}, "string id"),
        ({"id": {"a": 1}, "type": "complete"}, "string id"),
        ({"type": "ping", "payload": 5}, "must be an object"),
    ],
)
async def test_graphql_transport_ws_closes_a_malformed_message_with_4400(
    server: Server, message: dict[str, Any], reason: str
) -> None:
    """Today `"query": 123` is an INTERNAL_SERVER_ERROR (TypeError) with a traceback,
    and `"payload": null` drops the socket."""
    async with server.ws("graphql-transport-ws") as ws:
        await acknowledged(ws)
        code, got, received = await closed_with(ws, json.dumps(message))
    assert code == 4400 and reason in got and received == [], (code, got, received)
    assert not server.errors()


@pytest.mark.parametrize(
    ("query", "payload", "code"),
    [
        ("{ __typename }", {}, "BAD_REQUEST"),
        ('mutation { cancelTask(id: "x") { id } }', {}, "BAD_REQUEST"),
        ("subscription A { taskUpdates { id } }", {"operationName": "B"}, "BAD_REQUEST"),
        (
            "subscription A { taskUpdates { id } } subscription B { taskUpdates { id } }",
            {},
            "OPERATION_NAME_REQUIRED",
        ),
    ],
)
async def test_graphql_ws_start_of_a_query_or_mutation_is_a_bad_request(
    server: Server, query: str, payload: dict[str, Any], code: str
) -> None:
    """Today: INTERNAL_SERVER_ERROR (InvalidOperationTypeError) and a traceback."""
    async with server.ws("graphql-ws") as ws:
        await acknowledged(ws)
        await ws.send(start("graphql-ws", "1", query, **payload))
        async with asyncio.timeout(WAIT):
            answer = json.loads(await ws.recv())
    assert answer["type"] == "error" and answer["id"] == "1", answer
    assert answer["payload"]["extensions"]["code"] == code, answer
    assert not server.errors()


async def test_graphql_ws_closes_text_that_is_not_json_with_4400(server: Server) -> None:
    """Today strawberry's graphql-ws handler ignores it: neither closed nor answered."""
    async with server.ws("graphql-ws") as ws:
        await acknowledged(ws)
        code, reason, _ = await closed_with(ws, "not json")
    assert (code, reason) == (4400, "WebSocket message must be valid JSON")


async def test_a_client_that_disconnects_mid_body_is_one_info_line(server: Server) -> None:
    """Today: "Exception in ASGI application" with starlette's ClientDisconnect."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    await server.raw(head + b'{"query": "{ __typ', close=True)
    record = await server.logged("client disconnected after")
    assert record.levelno == logging.INFO and record.name == "graph.transport.middleware"
    assert not server.errors()


# Row 11: X-Forwarded-For from loopback


def access_clients(server: Server) -> list[str]:
    return [str(r.args[0]) for r in server.caplog.records if r.name == "uvicorn.access"]  # type: ignore[index]


async def test_x_forwarded_for_from_loopback_is_not_believed_by_default(server: Server) -> None:
    """uvicorn's own default (FORWARDED_ALLOW_IPS unset: 127.0.0.1 and ::1) logged 6.6.6.6."""
    answer = await server.raw(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 6.6.6.6\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")
    await server.logged('"GET /healthz HTTP/1.1" 200')
    clients = access_clients(server)
    assert clients and all(c.startswith("127.0.0.1:") for c in clients), clients


async def test_forwarded_allow_ips_names_the_proxies_that_are_believed(
    caplog: pytest.LogCaptureFixture, sqlite_url: str, model: ScriptedChatModel
) -> None:
    async with serving(caplog, sqlite_url, model, forwarded_allow_ips=["127.0.0.1"]) as served:
        await served.raw(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 6.6.6.6\r\n"
            b"Connection: close\r\n\r\n"
        )
        await served.logged('"GET /healthz HTTP/1.1" 200')
        assert [c.split(":")[0] for c in access_clients(served)] == ["6.6.6.6"]


def test_forwarded_allow_ips_takes_addresses_and_networks_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1, 10.1.0.0/16,::1")
    assert Settings(_env_file=None).forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16", "::1"]
    assert server_options(Settings(_env_file=None))["proxy_headers"] is True
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "proxy.internal")
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(_env_file=None)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    options = server_options(Settings(_env_file=None))
    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (False, [])


# Row 13: request heads and bodies that never complete


def refused(answer: bytes, status: int, code: str) -> dict[str, Any]:
    """The JSON error of an HTTP answer with `status` and `extensions.code` = `code`."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), answer[:200]
    assert b"connection: close" in head.lower(), head
    error = json.loads(body)["errors"][0]
    assert error["extensions"]["code"] == code, error
    return error


@pytest.fixture(params=["httptools", "h11"])
async def parser_server(
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    sqlite_url: str,
    model: ScriptedChatModel,
) -> AsyncIterator[Server]:
    """The server with each of uvicorn's HTTP parsers."""
    http = header_deadline_protocol(HEAD_TIMEOUT, parser=request.param)
    async with serving(caplog, sqlite_url, model, options={"http": http}) as served:
        served.parser = request.param
        yield served


@pytest.mark.parametrize(
    "request_bytes",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"GET /hea"],
    ids=["nothing", "half-a-head", "half-a-line"],
)
async def test_a_request_head_that_never_completes_gets_408_and_is_closed(
    parser_server: Server, request_bytes: bytes
) -> None:
    """Today the connection stays open for good (600 of them for all of a 25 s test)."""
    answer = await parser_server.raw(request_bytes)
    error = refused(answer, 408, "REQUEST_TIMEOUT")
    assert error["extensions"]["seconds"] == HEAD_TIMEOUT


async def test_a_kept_alive_connection_gets_the_head_deadline_for_its_next_request(
    parser_server: Server,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", parser_server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127")
            answer = await reader.read()
    finally:
        writer.close()
    refused(answer, 408, "REQUEST_TIMEOUT")


async def test_a_request_head_over_16_kib_gets_431(parser_server: Server) -> None:
    """httptools (uvicorn's default parser) read and answered 2 MB of headers."""
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(40))
    answer = await parser_server.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers)
    assert len(headers) > HEAD_MAX_BYTES == 16 * 1024
    if parser_server.parser == "h11":  # h11 refuses past its own 16 KiB, as it always did
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    else:
        refused(answer, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")


async def test_a_websocket_outlives_the_head_deadline(parser_server: Server) -> None:
    """The deadline ends with the upgrade: the WebSocket protocol owns the connection."""
    async with parser_server.ws("graphql-transport-ws") as ws:
        await acknowledged(ws)
        await asyncio.sleep(HEAD_TIMEOUT * 3)
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(WAIT):
            assert json.loads(await ws.recv()) == {"type": "pong"}


async def test_a_request_body_that_never_completes_gets_408_and_is_closed(
    server: Server,
) -> None:
    """Today the connection waits for the other 990 bytes for good."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    answer = await server.raw(head + b'{"query": "')
    error = refused(answer, 408, "REQUEST_TIMEOUT")
    assert error["extensions"]["seconds"] == BODY_TIMEOUT
    assert not server.errors()


def test_serve_passes_the_settings_to_uvicorn() -> None:
    """`postassist serve` runs uvicorn with these options (graph.cli.serve.serve)."""
    settings = Settings(ws_max_size=100_000, http_header_timeout_seconds=7, _env_file=None)
    options = server_options(settings)
    assert options["ws_max_size"] == 100_000
    assert options["http"].head_timeout == 7
    assert options["timeout_keep_alive"] == 5
