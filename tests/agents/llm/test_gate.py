"""The model gate: calls wait for a slot and for the model to be up instead of failing;
a timed-out call is cancelled at the server and tried once with fewer tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from agents.llm.calls import ModelTimeoutError
from agents.llm.chat import ModelConfig, build_chat_model
from agents.llm.gate import ModelGate, ModelState, ModelUnavailableError
from tests.graph.conftest import free_port
from tests.stub_model import create_stub

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def stub_server(port: int, *, latency: float, single_slot: bool) -> AsyncIterator[str]:
    """The stub model served by uvicorn on this loop; yields its base URL."""
    app = create_stub(latency, single_slot=single_slot)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # until it listens (10 s at most)
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task


async def test_slots_bound_the_calls_in_flight_and_status_says_busy() -> None:
    gate = ModelGate(slots=1)
    seen: list[tuple[int, ModelState]] = []

    async def call() -> None:
        async with gate.slot():
            seen.append((gate.in_flight, gate.status().state))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(call() for _ in range(4)))
    assert seen == [(1, ModelState.BUSY)] * 4
    assert gate.status().state == ModelState.READY and gate.status().waiting == 0


async def test_calls_wait_while_the_model_is_down_and_go_on_when_it_is_up() -> None:
    gate = ModelGate(unavailable_after=30)
    gate.down("restarting")
    entered = asyncio.Event()

    async def call() -> None:
        async with gate.slot():
            entered.set()

    waiter = asyncio.create_task(call())
    await asyncio.sleep(0.2)
    assert not entered.is_set()
    status = gate.status()
    assert (status.state, status.reason, status.waiting) == (ModelState.DOWN, "restarting", 1)
    gate.up()
    await asyncio.wait_for(waiter, 2)
    assert entered.is_set() and gate.status().state == ModelState.READY


async def test_a_model_down_too_long_or_gone_for_good_fails_the_waiting_calls() -> None:
    gate = ModelGate(unavailable_after=0.3)
    gate.down("unreachable (ConnectError)")
    with pytest.raises(ModelUnavailableError, match="MODEL_UNAVAILABLE_AFTER_SECONDS"):
        async with gate.slot():
            pass
    gone = ModelGate(unavailable_after=60)
    gone.down("restarting")
    waiter = asyncio.create_task(gone.slot().__aenter__())
    await asyncio.sleep(0.1)
    gone.fail("the server died 4 times")
    with pytest.raises(ModelUnavailableError, match="died 4 times"):
        await asyncio.wait_for(waiter, 2)


async def test_a_hung_endpoint_is_hung_up_on_and_tried_once_with_fewer_tokens() -> None:
    """Every request the client gives up on is closed at the server (so a server that
    stops on disconnect stops computing), and the second try asks for half the tokens."""
    requests: list[dict[str, Any]] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))  # fmt: skip
        body = json.loads(await reader.readexactly(length))
        request = {"max_tokens": body.get("max_tokens"), "closed_after": None}
        requests.append(request)
        started = time.perf_counter()
        await reader.read()  # b"" once the client closes the connection
        request["closed_after"] = time.perf_counter() - started

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = ModelConfig(
        provider="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        max_tokens=300,
        timeout=0.6,
        max_retries=0,
    )
    start = time.perf_counter()
    with pytest.raises(ModelTimeoutError):
        await build_chat_model(config, gate=ModelGate()).ainvoke("hello")
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.1)
    server.close()
    print(f"\nhung endpoint: failed after {elapsed:.2f}s, requests {requests}")
    assert [r["max_tokens"] for r in requests] == [300, 150]
    assert all(r["closed_after"] is not None and r["closed_after"] < 0.6 + 0.3 for r in requests)
    assert elapsed < 2 * 0.6 + 0.5


async def test_waiting_for_a_busy_single_slot_model_never_times_a_call_out() -> None:
    """Six calls at once to a one-request-at-a-time server with 0.3 s per call and a
    0.5 s call timeout: each call's deadline starts when it holds the slot, so all six
    get their answer (without the gate, the last ones would wait 1.5 s and time out)."""
    port = free_port()
    async with stub_server(port, latency=0.3, single_slot=True) as base_url:
        config = ModelConfig(
            provider="openai", base_url=base_url, api_key="k", timeout=0.5, max_retries=0
        )
        gate = ModelGate(slots=1)
        model = build_chat_model(config, gate=gate)
        answers = await asyncio.gather(*(model.ainvoke("hi") for _ in range(6)))
    assert all(a.content for a in answers)
    assert gate.status().state == ModelState.READY


async def test_calls_wait_for_an_endpoint_that_comes_back() -> None:
    """The endpoint is down when the call starts; the call waits (the gate probes) and
    gets its answer once the endpoint listens."""
    port = free_port()
    config = ModelConfig(
        provider="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="k",
        timeout=2,
        max_retries=0,
    )
    from agents.llm.chat import endpoint_probe

    gate = ModelGate(unavailable_after=20, probe=endpoint_probe(config))
    call = asyncio.create_task(build_chat_model(config, gate=gate).ainvoke("hi"))
    await asyncio.sleep(1.0)
    assert not call.done()
    assert gate.status().state == ModelState.DOWN and "unreachable" in str(gate.status().reason)
    async with stub_server(port, latency=0.0, single_slot=False):
        answer = await asyncio.wait_for(call, 10)
    assert answer.content and gate.status().state == ModelState.READY


async def test_a_model_that_came_back_after_the_waiters_gave_up_is_up_again() -> None:
    """Past `unavailable_after` a call probes once more before it gives up, and health's
    recheck clears a DOWN no call is waiting on: no model is reported down for good."""
    answers: list[str | None] = ["unreachable (ConnectError)"]

    async def probe(_seconds: float) -> str | None:
        return answers[-1]

    gate = ModelGate(unavailable_after=0.2, probe=probe)
    gate.down("unreachable (ConnectError)")
    with pytest.raises(ModelUnavailableError):
        async with gate.slot():
            pass
    answers.append(None)  # the endpoint is back
    async with gate.slot():
        assert gate.status().state == ModelState.BUSY
    gate.down("unreachable (ConnectError)")
    assert await gate.recheck() and gate.status().state == ModelState.READY


async def test_a_call_whose_connection_keeps_breaking_is_sent_at_most_four_times() -> None:
    """An endpoint that answers its probe but drops every completion: the call is sent
    again after each break (the model looked back), 1 + MAX_RESENDS times, then fails."""
    from agents.llm.calls import MAX_RESENDS
    from agents.llm.chat import endpoint_probe

    posts: list[bytes] = []

    async def drop_completions(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET"):
            body = b'{"object": "list", "data": []}'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        else:
            posts.append(head.split(b" ")[1])
        writer.close()

    server = await asyncio.start_server(drop_completions, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = ModelConfig(
        provider="openai", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
    )
    gate = ModelGate(unavailable_after=30, probe=endpoint_probe(config))
    with pytest.raises(Exception, match="Connection error"):
        await asyncio.wait_for(build_chat_model(config, gate=gate).ainvoke("hi"), 30)
    server.close()
    assert len(posts) == 1 + MAX_RESENDS
