"""Subscriptions over a real WebSocket on a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from graph.cli.client import TASK_PROGRESS, GraphQLClient

pytestmark = pytest.mark.anyio

GENERATE = """mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"""
INPUT = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone.",
}


async def start_task(url: Callable[[str], str]) -> str:
    async with httpx.AsyncClient() as http:
        body = (
            await http.post(
                f"http://{url('/graphql')}", json={"query": GENERATE, "variables": {"input": INPUT}}
            )
        ).json()
    return body["data"]["generatePost"]["id"]


async def recv(ws: Any) -> dict[str, Any]:
    return json.loads(await ws.recv())


async def test_graphql_transport_ws_streams_every_event_then_completes(
    live_server: Callable[[str], str],
) -> None:
    task_id = await start_task(live_server)
    async with websockets.connect(
        f"ws://{live_server('/graphql')}", subprotocols=["graphql-transport-ws"]
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": TASK_PROGRESS,
                        "variables": {"taskId": task_id, "afterSeq": 0},
                    },
                }
            )
        )
        events = []
        while True:
            message = await recv(ws)
            if message["type"] == "complete":
                assert message["id"] == "1"
                break
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["taskProgress"])
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[-1]["isTerminal"] and events[-1]["status"] == "COMPLETED"
    assert events[0]["kind"] == "TASK_QUEUED" and events[0]["data"] == {"position": 1}
    assert events[1]["status"] == "RUNNING"
    kinds = [(e["kind"], e["agent"]) for e in events]
    for agent in ("paper_researcher", "linkedin_creator", "tech_verifier", "style_checker"):
        assert ("AGENT_STARTED", agent) in kinds and ("AGENT_FINISHED", agent) in kinds
    progress = [e["progress"] for e in events]
    assert progress[-1] == 1.0 and max(progress[:-1]) < 1.0


async def test_resuming_with_after_seq_misses_nothing(live_server: Callable[[str], str]) -> None:
    task_id = await start_task(live_server)
    client = GraphQLClient(f"http://{live_server('/graphql')}")
    first: list[int] = []
    async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
        first.append(data["taskProgress"]["seq"])
        if len(first) == 5:
            break  # the client disconnects mid-stream
    rest = [
        d["taskProgress"]["seq"]
        async for d in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": first[-1]})
    ]
    assert first + rest == list(range(1, len(first) + len(rest) + 1))


async def test_unknown_task_gets_a_not_found_error(live_server: Callable[[str], str]) -> None:
    async with websockets.connect(
        f"ws://{live_server('/graphql')}", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "9",
                    "type": "subscribe",
                    "payload": {
                        "query": TASK_PROGRESS,
                        "variables": {"taskId": "missing", "afterSeq": 0},
                    },
                }
            )
        )
        message = await recv(ws)
        assert message["type"] == "next"
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert (await recv(ws))["type"] == "complete"


async def test_legacy_graphql_ws_protocol_still_works(live_server: Callable[[str], str]) -> None:
    task_id = await start_task(live_server)
    async with websockets.connect(
        f"ws://{live_server('/graphql')}", subprotocols=["graphql-ws"]
    ) as ws:
        assert ws.subprotocol == "graphql-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {
                        "query": TASK_PROGRESS,
                        "variables": {"taskId": task_id, "afterSeq": 0},
                    },
                }
            )
        )
        seqs = []
        while True:
            message = await recv(ws)
            if message["type"] == "ka":
                continue
            if message["type"] == "complete":
                break
            assert message["type"] == "data", message
            seqs.append(message["payload"]["data"]["taskProgress"]["seq"])
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 10


async def test_task_updates_pushes_status_changes(live_server: Callable[[str], str]) -> None:
    client = GraphQLClient(f"http://{live_server('/graphql')}")
    query = "subscription { taskUpdates(status: COMPLETED) { id status progress } }"
    updates = client.subscribe(query)
    # the subscription must be registered before the task starts: prime it in the background
    first = asyncio.create_task(anext(updates))
    await asyncio.sleep(0.5)
    task_id = await start_task(live_server)
    data = await asyncio.wait_for(first, 20)
    assert data["taskUpdates"] == {"id": task_id, "status": "COMPLETED", "progress": 1.0}
    await updates.aclose()
