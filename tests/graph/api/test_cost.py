"""Usage and cost per agent, per team and per task through GraphQL, on a real SQLite
file: the scripted model as the bundled `local` provider (cost 0), and the stub
OpenAI-compatible server as `openai` with a price table (cost from the prices) and
without one (cost unknown: null)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.app import create_app
from graph.settings import Settings
from tests.agents.llm.test_gate import stub_server
from tests.fakes import scripted
from tests.graph.conftest import GQL, free_port

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone. It reaches 28.4 BLEU on "
    "WMT 2014 English-to-German.",
}
USAGE = "usage { llmCalls inputTokens outputTokens totalTokens costUsd }"
TASK = f"""
query($id: ID!) {{
  task(id: $id) {{
    status
    {USAGE}
    teams {{ name {USAGE} agents {{ name {USAGE} }} }}
  }}
}}"""
LOGS = """
query($id: ID!, $after: String) {
  agentLogs(taskId: $id, first: 100, after: $after) {
    edges { node { team agent kind data } }
    pageInfo { hasNextPage endCursor }
  }
}"""
#: The tokens every call of the scripted model and of the stub server reports.
CALL_INPUT, CALL_OUTPUT = 100, 20
COUNTS = ("llmCalls", "inputTokens", "outputTokens", "totalTokens")


def settings(database_url: str, **values: Any) -> Settings:
    return Settings(
        database_url=database_url,
        follow_poll_seconds=0.5,
        rate_limit_mutations="10000/minute",
        _env_file=None,
        **values,
    )


@asynccontextmanager
async def serving(config: Settings, **app_options: Any) -> AsyncIterator[GQL]:
    app = create_app(config, **app_options)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield GQL(client)


async def finished_task(gql: GQL) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate a post; the finished task (usage at each level) and its LLM_USAGE events."""
    body = await gql(GENERATE, input=INPUT)
    assert "errors" not in body, body
    task_id = body["data"]["generatePost"]["id"]
    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
    task = (await gql(TASK, id=task_id))["data"]["task"]
    events, after = [], None
    while True:
        page = (await gql(LOGS, id=task_id, after=after))["data"]["agentLogs"]
        events += [e["node"] for e in page["edges"] if e["node"]["kind"] == "LLM_USAGE"]
        if not page["pageInfo"]["hasNextPage"]:
            return task, events
        after = page["pageInfo"]["endCursor"]


def assert_levels_add_up(
    task: dict[str, Any], events: list[dict[str, Any]], *, meta_asked: bool
) -> None:
    """Agents plus supervisors plus the meta-supervisor make the task's usage, and each
    level is what its LLM_USAGE events say. `meta_asked`: the meta-supervisor called the
    model (it does only when more than one step is valid: after a rejection)."""

    def of(selected: list[dict[str, Any]]) -> dict[str, int]:
        return {
            "llmCalls": len(selected),
            "inputTokens": sum(e["data"]["input_tokens"] for e in selected),
            "outputTokens": sum(e["data"]["output_tokens"] for e in selected),
            "totalTokens": sum(e["data"]["total_tokens"] for e in selected),
        }

    def counts(usage: dict[str, Any]) -> dict[str, int]:
        return {name: usage[name] for name in COUNTS}

    meta = [e for e in events if e["team"] is None]
    assert {e["agent"] for e in meta} == ({"meta_supervisor"} if meta_asked else set())
    total, supervisor_calls = dict.fromkeys(COUNTS, 0), 0
    for team in task["teams"]:
        own = [e for e in events if e["team"] == team["name"]]
        listed = {a["name"] for a in team["agents"]}
        supervisor = [e for e in own if e["agent"] not in listed]
        assert {e["agent"] for e in supervisor} <= {team["name"].replace("_team", "_supervisor")}
        supervisor_calls += len(supervisor)
        assert counts(team["usage"]) == of(own)
        for agent in team["agents"]:
            assert agent["usage"]["llmCalls"] > 0, agent
            assert counts(agent["usage"]) == of([e for e in own if e["agent"] == agent["name"]])
        agents_and_supervisor = [counts(a["usage"]) for a in team["agents"]] + [of(supervisor)]
        for name in COUNTS:
            assert team["usage"][name] == sum(u[name] for u in agents_and_supervisor)
            total[name] += team["usage"][name]
    assert supervisor_calls > 0  # a team's usage is more than its agents'
    for name in COUNTS:
        total[name] += of(meta)[name]
    assert counts(task["usage"]) == total == of(events)
    assert task["usage"]["llmCalls"] > 0


async def test_the_bundled_model_costs_zero_at_every_level(sqlite_url: str) -> None:
    # the first verdict rejects: the meta-supervisor asks the model for a revision
    model = scripted(verification_order=["style_checker"], approve=lambda n: n > 0)
    async with serving(settings(sqlite_url), model_factory=lambda: model) as gql:
        task, events = await finished_task(gql)
    assert_levels_add_up(task, events, meta_asked=True)
    assert {e["data"]["cost_usd"] for e in events} == {0.0}
    assert task["usage"]["costUsd"] == 0.0
    for team in task["teams"]:
        assert team["usage"]["costUsd"] == 0.0
        assert {a["usage"]["costUsd"] for a in team["agents"]} == {0.0}


async def test_a_price_table_prices_every_call_and_each_level_sums_them(
    sqlite_url: str,
) -> None:
    input_price, output_price = 2.5, 10.0  # USD per million tokens
    per_call = (CALL_INPUT * input_price + CALL_OUTPUT * output_price) / 1_000_000
    async with stub_server(free_port(), latency=0.0, single_slot=False) as model_url:
        config = settings(
            sqlite_url,
            llm_provider="openai",
            openai_base_url=model_url,
            openai_api_key="stub",
            llm_price_input_per_mtok=input_price,
            llm_price_output_per_mtok=output_price,
        )
        async with serving(config) as gql:
            task, events = await finished_task(gql)
    assert_levels_add_up(task, events, meta_asked=False)
    assert {e["data"]["cost_usd"] for e in events} == {per_call}  # in the events, per call
    assert task["usage"]["costUsd"] == pytest.approx(task["usage"]["llmCalls"] * per_call)
    for team in task["teams"]:
        assert team["usage"]["costUsd"] == pytest.approx(team["usage"]["llmCalls"] * per_call)
        for agent in team["agents"]:
            assert agent["usage"]["costUsd"] == pytest.approx(agent["usage"]["llmCalls"] * per_call)


async def test_without_a_price_table_an_openai_compatible_model_costs_null(
    sqlite_url: str,
) -> None:
    async with stub_server(free_port(), latency=0.0, single_slot=False) as model_url:
        config = settings(
            sqlite_url, llm_provider="openai", openai_base_url=model_url, openai_api_key="stub"
        )
        async with serving(config) as gql:
            task, events = await finished_task(gql)
    assert_levels_add_up(task, events, meta_asked=False)  # tokens count all the same
    assert {e["data"]["cost_usd"] for e in events} == {None}
    assert task["usage"]["costUsd"] is None
    for team in task["teams"]:
        assert team["usage"]["costUsd"] is None
        assert {a["usage"]["costUsd"] for a in team["agents"]} == {None}
