"""Subscriptions over plain HTTP against the WebSocket: how long a `taskProgress` event
takes from its server `timestamp` (stamped as it is appended, just before the commit)
to its arrival at a client over graphql-transport-ws, GraphQL over SSE and Apollo's
multipart protocol, the three following the same task at once. Prints a table; asserts
nothing.

One app on uvicorn in this process (SQLite, memory bus, its own worker) on the scripted
model, each model call held `--call-seconds` so the events come live (replayed ones,
stamped before the subscriptions opened, are left out). The clients run on the same
loop as the server: the figures include their share of it, alike for the three.

Usage: `python -m benchmarks.http_subscriptions [--tasks 5] [--call-seconds 0.05]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import print_table, stamp
from graph.app import create_app
from graph.cli.client import TASK_PROGRESS, GraphQLClient
from graph.settings import Settings
from tests.fakes import ScriptedChatModel, scripted
from tests.graph.conftest import free_port, serve

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}
MULTIPART = 'multipart/mixed;subscriptionSpec="1.0",application/json'


def slowed(seconds: float) -> ScriptedChatModel:
    """The scripted model, each call held `seconds` first (in the worker's thread)."""
    inner = scripted(verification_order=["style_checker"])

    def handler(messages, tools):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        return inner.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=[])


async def over_websocket(url: str, variables: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    async for data in GraphQLClient(url).subscribe(TASK_PROGRESS, variables):
        yield data["taskProgress"]


async def over_sse(url: str, variables: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    body = {"query": TASK_PROGRESS, "variables": variables}
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("POST", url, json=body, headers={"accept": "text/event-stream"}) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                yield json.loads(line[6:])["data"]["taskProgress"]


async def over_multipart(url: str, variables: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    body = {"query": TASK_PROGRESS, "variables": variables}
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("POST", url, json=body, headers={"accept": MULTIPART}) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith('{"payload"'):
                yield json.loads(line)["payload"]["data"]["taskProgress"]


async def lags_of(stream: AsyncIterator[dict[str, Any]], opened: float) -> list[float]:
    """Arrival minus server stamp (seconds) of each live event, to the terminal one."""
    lags = []
    async for event in stream:
        if stamp(event) >= opened:
            lags.append(time.time() - stamp(event))
        if event["isTerminal"]:
            break
    return lags


async def main(tasks: int, call_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}",
            rate_limit_mutations="10000/minute",
            _env_file=None,
        )
        app = create_app(settings, model_factory=lambda: slowed(call_seconds))
        async with serve(app, free_port()) as host, httpx.AsyncClient(timeout=60) as http:
            http_url = ws_url = f"http://{host}/graphql"  # the client derives ws://
            found: dict[str, list[float]] = {"WebSocket": [], "SSE": [], "multipart": []}
            for _ in range(tasks):
                created = await http.post(
                    http_url, json={"query": GENERATE, "variables": {"input": INPUT}}
                )
                task_id = created.json()["data"]["generatePost"]["id"]
                variables = {"taskId": task_id, "afterSeq": 0}
                opened = time.time()
                results = await asyncio.gather(
                    lags_of(over_websocket(ws_url, variables), opened),
                    lags_of(over_sse(http_url, variables), opened),
                    lags_of(over_multipart(http_url, variables), opened),
                )
                for name, lags in zip(found, results, strict=True):
                    found[name].extend(lags)
    rows = [("transport", "events", "median ms", "p95 ms", "max ms")]
    for name, lags in found.items():
        ordered = sorted(lags)
        p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0
        rows.append(
            (
                name,
                str(len(lags)),
                f"{statistics.median(lags) * 1000:.1f}" if lags else "-",
                f"{p95 * 1000:.1f}",
                f"{max(lags, default=0) * 1000:.1f}",
            )
        )
    print_table(
        f"taskProgress: server timestamp -> client arrival ({tasks} tasks, model calls "
        f"held {call_seconds:g} s, the three clients on the same task at once)",
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--call-seconds", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.call_seconds))
