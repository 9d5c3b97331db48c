"""A busy model never refuses work: with a slow one-request-at-a-time model (the
bundled llama.cpp server's shape), mutations sent at once and one after another are all
accepted and all complete, and `health` says BUSY, never DOWN, while it works."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.app import create_app
from graph.settings import Settings
from tests.agents.llm.test_gate import stub_server
from tests.graph.conftest import GQL, free_port

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id status } }"
HEALTH = "{ health { status model { ready state reason inFlight } } }"


def paper(n: int) -> dict[str, str]:
    return {"paperTitle": f"Paper number {n} on attention", "additionalContext": "Attention."}


async def test_a_busy_single_slot_model_accepts_every_generation(sqlite_url: str) -> None:
    async with stub_server(free_port(), latency=0.15, single_slot=True) as model_url:
        settings = Settings(
            database_url=sqlite_url,
            llm_provider="openai",
            openai_base_url=model_url,
            openai_api_key="stub",
            llm_max_concurrent_calls=1,  # like the bundled server: one call at a time
            llm_timeout_seconds=0.5,  # shorter than a call's wait behind the others
            llm_max_retries=0,
            max_concurrent_generations=3,
            readiness_cache_seconds=0.2,
            rate_limit_mutations="10000/minute",
            _env_file=None,
        )
        app = create_app(settings)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                gql = GQL(client)
                states: list[dict] = []

                async def sample() -> None:
                    while True:
                        states.append((await gql(HEALTH))["data"]["health"])
                        await asyncio.sleep(0.1)

                sampler = asyncio.create_task(sample())
                at_once = await asyncio.gather(*(gql(GENERATE, input=paper(n)) for n in range(4)))
                ids = [r["data"]["generatePost"]["id"] for r in at_once]
                for n in range(4, 6):  # one after another, each after the previous one ended
                    reply = await gql(GENERATE, input=paper(n))
                    ids.append(reply["data"]["generatePost"]["id"])
                    await gql.wait_until_finished(ids[-1])
                finished = [await gql.wait_until_finished(i) for i in ids]
                sampler.cancel()
    assert all("errors" not in r for r in at_once)
    assert [t["status"] for t in finished] == ["COMPLETED"] * 6
    models = [s["model"] for s in states]
    assert all(m["ready"] and m["state"] in ("READY", "BUSY") for m in models), models
    assert any(m["state"] == "BUSY" and m["inFlight"] == 1 for m in models)
    assert all(s["status"] == "ok" for s in states)
