"""Truthful health (/healthz, /readyz, the health query) and provider errors: a 5xx or a
hung model endpoint fails the call within LLM_TIMEOUT_SECONDS and the task as MODEL_ERROR,
with no upstream text."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from asgi_lifespan import LifespanManager

from agents.llm.calls import ModelTimeoutError, model_failure
from graph.app import create_app
from graph.settings import Settings
from tests.fakes import ScriptedChatModel, scripted
from tests.graph.conftest import GQL, free_port

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}


@contextlib.asynccontextmanager
async def serve(settings: Settings, model: Any) -> AsyncIterator[GQL]:
    app = create_app(settings, model_factory=lambda: model)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield GQL(client)


def status_error(status: int, text: str) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, request=request, text=text)
    cls = openai.InternalServerError if status >= 500 else openai.BadRequestError
    return cls(text, response=response, body={"error": text})


def test_provider_errors_map_to_our_messages() -> None:
    assert model_failure(status_error(503, "upstream secret")) == (
        "the model endpoint failed (HTTP 503)",
        True,
    )
    assert model_failure(status_error(400, "upstream secret"))[1] is False  # type: ignore[index]
    assert model_failure(ModelTimeoutError("x")) == ("the model did not answer in time", True)
    assert model_failure(KeyError("other")) is None


async def test_gql_healthz_and_readyz(gql: GQL) -> None:
    assert (await gql.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gql.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert set(ready.json()["checks"]) == {"database", "bus", "model"}


async def test_a_down_openai_compatible_endpoint_is_not_ready(sqlite_url: str) -> None:
    settings = Settings(
        database_url=sqlite_url,
        llm_provider="openai",
        openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
        readiness_timeout_seconds=0.5,
        _env_file=None,
    )
    async with serve(settings, scripted()) as gql:
        ready = await gql.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"]["ok"] is False
        health = (await gql("{ health { status model { ready } } }"))["data"]["health"]
        assert health == {"status": "degraded", "model": {"ready": False}}


async def test_a_5xx_from_the_model_fails_the_task_as_model_error(sqlite_url: str) -> None:
    def fail(messages: Any, tools: Any) -> Any:
        raise status_error(503, "upstream secret: pool exhausted at 10.0.0.7")

    settings = Settings(database_url=sqlite_url, _env_file=None)
    async with serve(settings, ScriptedChatModel(handler=fail, calls=[])) as gql:
        task_id = (await gql(GENERATE, input=INPUT))["data"]["generatePost"]["id"]
        await gql.wait_until_finished(task_id)
        task = await gql(
            "query($id: ID!) { task(id: $id) { status error { code message } } "
            "agentLogs(taskId: $id) { edges { node { kind status data } } } }",
            id=task_id,
        )
    assert task["data"]["task"]["status"] == "FAILED"
    assert task["data"]["task"]["error"]["code"] == "MODEL_ERROR"
    assert "secret" not in str(task)
    failed = [e["node"] for e in task["data"]["agentLogs"]["edges"]]
    assert failed[-1]["status"] == "FAILED" and failed[-1]["data"]["retryable"] is True
