"""Batches through GraphQL: `generatePosts` validates all or nothing, the tasks of one
paper in several tones research it once (LangGraph's node cache on the app's database,
counted on the stub model), `batchProgress` over a real WebSocket pushes every status
and completes, `tasks(batchId:)` lists the batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from graph.app import create_app
from graph.settings import Settings
from tests.graph.conftest import GQL, free_port, serve
from tests.stub_model import create_stub

pytestmark = pytest.mark.anyio

GENERATE_POSTS = """
mutation($inputs: [GeneratePostInput!]!) {
  generatePosts(inputs: $inputs) { id status batchId tone }
}"""
BATCH_PROGRESS = """
subscription($batchId: ID!) { batchProgress(batchId: $batchId) { id status batchId } }"""
BATCH_TASKS = """
query($batchId: ID) { tasks(batchId: $batchId) { totalCount edges { node { id batchId } } } }"""
RESEARCHER_LOGS = """
query($id: ID!) {
  agentLogs(taskId: $id, agent: "paper_researcher") { edges { node { kind message data } } }
}"""
PAPER = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone and drops recurrence.",
}
TONES = ("PROFESSIONAL", "CASUAL", "ACADEMIC")


async def test_a_batch_with_one_invalid_input_stores_nothing(gql: GQL) -> None:
    inputs = [{**PAPER, "tone": tone} for tone in (*TONES, "CASUAL", "ACADEMIC")]
    inputs[3] = {**PAPER, "paperTitle": "abc", "maxHashtags": 50}
    body = await gql(GENERATE_POSTS, inputs=inputs)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "inputs[3].paperTitle"
    assert set(error["extensions"]["fields"]) == {"inputs[3].paperTitle", "inputs[3].maxHashtags"}
    assert error["message"].startswith("inputs[3].paperTitle:")
    listed = await gql(BATCH_TASKS, batchId=None)
    assert listed["data"]["tasks"]["totalCount"] == 0


@pytest.mark.parametrize("count", [0, 6])
async def test_a_batch_holds_one_to_five_inputs(gql: GQL, count: int) -> None:
    body = await gql(GENERATE_POSTS, inputs=[PAPER] * count)
    error = body["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "inputs",
    )
    assert (await gql(BATCH_TASKS, batchId=None))["data"]["tasks"]["totalCount"] == 0


async def test_batch_progress_of_an_unknown_batch_is_not_found(
    live_server: Callable[[str], str],
) -> None:
    async with websockets.connect(
        f"ws://{live_server('/graphql')}", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": BATCH_PROGRESS, "variables": {"batchId": "0" * 32}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = json.loads(await ws.recv())
    assert message["type"] in ("next", "error"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert errors[0]["extensions"]["field"] == "batchId"


async def subscribe(host: str, query: str, **variables: Any) -> list[dict[str, Any]]:
    """Every `next` payload of one graphql-transport-ws subscription until `complete`."""
    async with websockets.connect(
        f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        seen = []
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "complete":
                return seen
            assert message["type"] == "next", message
            seen.append(message["payload"]["data"]["batchProgress"])


async def test_three_tones_of_one_paper_make_one_research_call(sqlite_url: str) -> None:
    """Three tasks of one batch run at once (worker concurrency 3) on the stub model:
    the first researches, the other two wait for its cache entry and say so; the
    subscription sees each task's statuses and completes when all three are done."""
    async with serve(create_stub(0.05), free_port()) as model_host:
        settings = Settings(
            database_url=sqlite_url,
            llm_provider="openai",
            openai_base_url=f"http://{model_host}/v1",
            openai_api_key="stub",
            llm_model="stub",
            llm_max_retries=0,
            max_concurrent_generations=3,
            follow_poll_seconds=0.5,
            rate_limit_mutations="10000/minute",
            _env_file=None,
        )
        async with serve(create_app(settings), free_port()) as host:
            async with httpx.AsyncClient(base_url=f"http://{host}") as http:

                async def gql(query: str, **variables: Any) -> dict[str, Any]:
                    sent = {"query": query, "variables": variables}
                    return (await http.post("/graphql", json=sent)).json()

                inputs = [{**PAPER, "tone": tone} for tone in TONES]
                tasks = (await gql(GENERATE_POSTS, inputs=inputs))["data"]["generatePosts"]
                batch_id = tasks[0]["batchId"]
                async with asyncio.timeout(60):
                    pushed = await subscribe(host, BATCH_PROGRESS, batchId=batch_id)
                listed = (await gql(BATCH_TASKS, batchId=batch_id))["data"]["tasks"]
                logs = {
                    t["id"]: [
                        e["node"]
                        for e in (await gql(RESEARCHER_LOGS, id=t["id"]))["data"]["agentLogs"][
                            "edges"
                        ]
                    ]
                    for t in tasks
                }
                calls = (await http.get(f"http://{model_host}/calls")).json()["log"]

    assert [t["tone"] for t in tasks] == list(TONES)
    assert {t["batchId"] for t in tasks} == {batch_id} and batch_id
    assert all(t["status"] == "PENDING" for t in tasks)
    ids = {t["id"] for t in tasks}
    assert {n["node"]["id"] for n in listed["edges"]} == ids and listed["totalCount"] == 3

    research = [c for c in calls if c["system"].startswith("You are PaperResearcher")]
    assert len(research) == 1, research
    finished = {
        task_id: next(e for e in events if e["kind"] == "AGENT_FINISHED")
        for task_id, events in logs.items()
    }
    computed = [tid for tid, event in finished.items() if not event["data"]["cached"]]
    assert len(computed) == 1
    for task_id, event in finished.items():
        if task_id != computed[0]:
            assert event["data"]["cached"] is True
            assert event["data"]["computed_by"] == computed[0]
            assert "from the cache" in event["message"]
            assert not any(e["kind"] == "LLM_CALL" for e in logs[task_id])

    by_task: dict[str, list[str]] = {}
    for item in pushed:
        assert item["batchId"] == batch_id
        by_task.setdefault(item["id"], []).append(item["status"])
    assert set(by_task) == ids
    for statuses in by_task.values():
        assert statuses[-1] == "COMPLETED"
        assert statuses.count("COMPLETED") == 1
