"""The CLI's submission retries with one idempotency key (`GraphQLClient.submit`): against
a raw HTTP server that drops connections, and through a proxy that drops the answer of
a live server after it stored the task (the case the key exists for: one task)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from graph.cli.client import GENERATE_POST, GraphQLClient, GraphQLClientError

pytestmark = pytest.mark.anyio

VARIABLES = {"input": {"paperTitle": "Attention Is All You Need", "additionalContext": "Attn."}}
TASKS = "{ tasks(first: 50) { totalCount edges { node { id } } } }"


class Flaky:
    """A raw HTTP/1.1 server on a free loopback port that reads each request and then,
    for the first `drops` connections, closes without answering; later ones answer
    `answer(body)` as JSON. `bodies` holds every request body it read."""

    def __init__(self, drops: int, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.drops, self.answer = drops, answer
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = json.loads(await reader.readexactly(length))
        self.bodies.append(body)
        if len(self.bodies) > self.drops:
            payload = await self.answer(body)
            status, data = payload if isinstance(payload, tuple) else (200, payload)
            text = json.dumps(data).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode()
                + text
            )
            await writer.drain()
        writer.close()


async def serve(flaky: Flaky) -> AsyncIterator[str]:
    server = await asyncio.start_server(flaky.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/graphql"


async def echo(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"generatePost": {"id": "t1", "key": body["variables"]["idempotencyKey"]}}}


async def test_a_retry_after_a_dropped_connection_sends_the_same_key() -> None:
    flaky = Flaky(drops=2, answer=echo)
    retries: list[tuple[int, str]] = []
    async for url in serve(flaky):
        client = GraphQLClient(url, timeout=5)
        data = await client.submit(
            GENERATE_POST, VARIABLES, backoff=0.01,
            on_retry=lambda n, exc: retries.append((n, type(exc).__name__)),
        )  # fmt: skip
        keys = [body["variables"]["idempotencyKey"] for body in flaky.bodies]
        assert len(keys) == 3 and len(set(keys)) == 1, keys
        assert uuid.UUID(keys[0]).version == 4
        assert data["generatePost"]["key"] == keys[0]
        assert [n for n, _ in retries] == [1, 2]
        assert all(body["variables"]["input"] == VARIABLES["input"] for body in flaky.bodies)
        # Another invocation is another submission: a new key.
        await client.submit(GENERATE_POST, VARIABLES, backoff=0.01)
        assert flaky.bodies[-1]["variables"]["idempotencyKey"] not in keys


async def test_the_retries_end_and_graphql_errors_are_not_retried() -> None:
    always = Flaky(drops=100, answer=echo)
    async for url in serve(always):
        with pytest.raises(httpx.TransportError):
            await GraphQLClient(url, timeout=5).submit(
                GENERATE_POST, VARIABLES, attempts=3, backoff=0.01
            )
        assert len(always.bodies) == 3

    async def conflict(body: dict[str, Any]) -> dict[str, Any]:
        return {"errors": [{"message": "taken", "extensions": {"code": "CONFLICT"}}]}

    refusing = Flaky(drops=0, answer=conflict)
    async for url in serve(refusing):
        with pytest.raises(GraphQLClientError) as error:
            await GraphQLClient(url, timeout=5).submit(GENERATE_POST, VARIABLES, backoff=0.01)
        assert error.value.code == "CONFLICT"
        assert len(refusing.bodies) == 1

    async def bad_gateway(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if len(gateway.bodies) < 2:
            return 502, {}
        return await echo(body)

    gateway = Flaky(drops=0, answer=bad_gateway)
    async for url in serve(gateway):
        await GraphQLClient(url, timeout=5).submit(GENERATE_POST, VARIABLES, backoff=0.01)
        assert len(gateway.bodies) == 2
        assert len({body["variables"]["idempotencyKey"] for body in gateway.bodies}) == 1


async def test_a_lost_answer_does_not_start_a_second_run(
    live_server: Callable[[str], str],
) -> None:
    """A proxy forwards the first submission to the live server (which stores the task)
    and drops its answer: the CLI's retry gets that task back; the server holds one."""
    upstream = f"http://{live_server('/graphql')}"
    answers: list[dict[str, Any]] = []

    async def forward(body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = (await http.post(upstream, json=body)).json()
        answers.append(answer)
        return answer

    class LosesFirstAnswer(Flaky):
        async def handle(self, reader: Any, writer: Any) -> None:
            if not self.bodies:  # forward the first request, then drop the connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = json.loads(await reader.readexactly(length))
                self.bodies.append(body)
                await forward(body)
                writer.close()
                return
            await super().handle(reader, writer)

    proxy = LosesFirstAnswer(drops=0, answer=forward)
    async for url in serve(proxy):
        task = (await GraphQLClient(url, timeout=10).submit(
            GENERATE_POST, VARIABLES, backoff=0.01
        ))["generatePost"]  # fmt: skip
    assert len(answers) == 2  # the server answered twice: stored, then replayed
    assert answers[0]["data"]["generatePost"]["id"] == task["id"]
    async with httpx.AsyncClient(timeout=10) as http:
        page = (await http.post(upstream, json={"query": TASKS})).json()["data"]["tasks"]
    assert page["totalCount"] == 1
    assert page["edges"][0]["node"]["id"] == task["id"]
