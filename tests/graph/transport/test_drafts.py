"""The post as it is written: `taskProgress(includeDrafts: true)` over a real WebSocket
on a real uvicorn server, with the scripted model streaming its answers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from langchain_core.messages import BaseMessage

from graph.cli.client import TASK_PROGRESS, GraphQLClient
from tests.fakes import ScriptedChatModel, scripted, system_text
from tests.graph.transport.test_websocket import start_task

pytestmark = pytest.mark.anyio

CONTENT = """query($id: ID!) { task(id: $id) { status lastSeq result { content } } }"""
#: The research call waits for this (set by a test once its subscribers are in), so no
#: draft is written before anyone listens.
RESEARCH_MAY_START = threading.Event()


@pytest.fixture
def model() -> ScriptedChatModel:
    fake = scripted(verification_order=["style_checker"], token_seconds=0.005)
    play = fake.handler

    def gated(messages: list[BaseMessage], tools: list[str]) -> Any:
        if "PaperResearcher" in system_text(messages):
            RESEARCH_MAY_START.wait(20)
        return play(messages, tools)

    RESEARCH_MAY_START.clear()
    fake.handler = gated
    return fake


async def subscribe(url: str, task_id: str, *, drafts: bool, after_seq: int = 0, until=None):
    """The events of one graphql-transport-ws subscription (until `until(event)` is
    true: then it disconnects), as a list."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(f"ws://{url}", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        variables = {"taskId": task_id, "afterSeq": after_seq, "includeDrafts": drafts}
        payload = {"query": TASK_PROGRESS, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "complete":
                return events
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["taskProgress"])
            if until is not None and until(events[-1]):
                return events


def applied(deltas: list[dict[str, Any]]) -> str:
    """The draft as a client builds it: append `text`, or start afresh on `replace`."""
    text = ""
    for delta in deltas:
        data = delta["data"]
        text = data["text"] if data["replace"] else text + data["text"]
    return text


async def content_of(url: str, task_id: str) -> dict[str, Any]:
    client = GraphQLClient(f"http://{url}")
    return (await client.execute(CONTENT, {"id": task_id}))["task"]


async def started(watchers: list[asyncio.Task[Any]]) -> None:
    """Let the subscriptions get their first stored event, then let the run go on."""
    await asyncio.sleep(0.5)
    assert not any(w.done() for w in watchers)
    RESEARCH_MAY_START.set()


async def test_drafts_stream_the_post_and_leave_the_stored_events_alone(
    live_server: Callable[[str], str],
) -> None:
    url = live_server("/graphql")
    task_id = await start_task(live_server)
    with_drafts = asyncio.create_task(subscribe(url, task_id, drafts=True))
    without = asyncio.create_task(subscribe(url, task_id, drafts=False))
    await started([with_drafts, without])
    events, plain = await asyncio.wait_for(asyncio.gather(with_drafts, without), 30)
    task = await content_of(url, task_id)

    deltas = [e for e in events if e["kind"] == "DRAFT_DELTA"]
    stored = [e for e in events if e["kind"] != "DRAFT_DELTA"]
    assert len(deltas) > 3
    assert not any(e["kind"] == "DRAFT_DELTA" for e in plain)
    # the stored events are the same with and without drafts, gapless, none lost
    assert [e["seq"] for e in stored] == list(range(1, task["lastSeq"] + 1))
    assert [(e["seq"], e["kind"]) for e in stored] == [(e["seq"], e["kind"]) for e in plain]
    # each delta: no seq, the writer's, numbered 0, 1, 2 ... in draft 0
    assert all(d["seq"] is None and not d["isTerminal"] for d in deltas)
    assert {(d["team"], d["agent"], d["message"]) for d in deltas} == {
        ("content_team", "linkedin_creator", "")
    }
    assert [d["data"]["index"] for d in deltas] == list(range(len(deltas)))
    assert {d["data"]["draft"] for d in deltas} == {0}
    assert [d["id"] for d in deltas] == [f"{task_id}:draft:1:0:{i}" for i in range(len(deltas))]
    assert deltas[0]["data"]["replace"]
    # they arrive while LinkedInCreator works, and build the stored post
    kinds = [(e["kind"], e["agent"]) for e in events]
    began = kinds.index(("AGENT_STARTED", "linkedin_creator"))
    ended = kinds.index(("AGENT_FINISHED", "linkedin_creator"))
    positions = [i for i, e in enumerate(events) if e["kind"] == "DRAFT_DELTA"]
    assert began < positions[0] and positions[-1] < ended
    assert applied(deltas) == task["result"]["content"]
    # the sentences streamed in pieces, not as whole sentences
    assert sum(not d["data"]["replace"] for d in deltas) > 2


async def test_a_subscriber_that_reconnects_gets_every_stored_event_once(
    live_server: Callable[[str], str],
) -> None:
    url = live_server("/graphql")
    task_id = await start_task(live_server)
    first_part = asyncio.create_task(
        subscribe(url, task_id, drafts=True, until=lambda e: e["kind"] == "DRAFT_DELTA")
    )
    await started([first_part])
    first = await asyncio.wait_for(first_part, 30)
    last_seq = max(e["seq"] for e in first if e["seq"] is not None)
    rest = await asyncio.wait_for(subscribe(url, task_id, drafts=True, after_seq=last_seq), 30)
    task = await content_of(url, task_id)
    seqs = [e["seq"] for e in first + rest if e["seq"] is not None]
    assert seqs == list(range(1, task["lastSeq"] + 1))
    assert first[-1]["kind"] == "DRAFT_DELTA"
