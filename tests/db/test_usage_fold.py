"""LLM_USAGE events fold into usage and cost per agent, per team and per task, on a real
database (SQLite file; PostgreSQL when it runs)."""

from __future__ import annotations

from typing import Any

import pytest

from db import repository
from db.enums import EventKind, TaskStatus
from db.event_log import EventLog
from db.events import Event
from db.snapshot import Teams, UsageSnapshot
from tests.db.test_event_log import new_task

pytestmark = pytest.mark.anyio


def usage(team: str | None, agent: str, tokens: tuple[int, int], cost: float | None) -> Event:
    """An LLM_USAGE event of `agent` in `team` that read and wrote `tokens`."""
    data: dict[str, Any] = {
        "purpose": "test",
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "total_tokens": sum(tokens),
        "cost_usd": cost,
    }
    return Event(EventKind.LLM_USAGE, team=team, agent=agent, data=data)


def summed(entry: UsageSnapshot) -> tuple[int, int, int, int, float | None]:
    return (
        entry.llm_calls,
        entry.input_tokens,
        entry.output_tokens,
        entry.total_tokens,
        entry.cost_usd,
    )


async def test_usage_folds_per_agent_per_team_and_per_task(event_log: EventLog) -> None:
    task_id = await new_task(event_log)
    await event_log.append(task_id, Event.task_status(TaskStatus.RUNNING))
    await event_log.append_many(
        task_id,
        [
            usage(None, "meta_supervisor", (100, 10), 0.001),
            usage("content_team", "content_supervisor", (50, 5), 0.0005),
            usage("content_team", "paper_researcher", (200, 40), 0.003),
            usage("content_team", "paper_researcher", (300, 60), 0.004),
            usage("content_team", "linkedin_creator", (400, 80), 0.006),
            usage("verification_team", "tech_verifier", (10, 1), 0.0001),
            usage("verification_team", "style_checker", (20, 2), None),  # no price
        ],
    )
    async with event_log.session_factory() as session:
        task = await repository.get_task(session=session, task_id=task_id)
    assert task is not None
    teams = Teams.load(task.teams)
    content, verification = teams.team("content_team"), teams.team("verification_team")

    # an agent: its own calls only
    assert summed(content.agent("paper_researcher").usage) == (2, 500, 100, 600, 0.007)
    assert summed(content.agent("linkedin_creator").usage) == (1, 400, 80, 480, 0.006)
    assert summed(verification.agent("tech_verifier").usage) == (1, 10, 1, 11, 0.0001)
    # a call without a price makes the cost unknown, not smaller
    assert summed(verification.agent("style_checker").usage) == (1, 20, 2, 22, None)
    # the supervisor is not listed as an agent of its team, but its call counts for it
    assert [a.name for a in content.agents] == ["paper_researcher", "linkedin_creator"]
    assert summed(content.usage) == (4, 950, 185, 1135, 0.0135)
    assert summed(verification.usage) == (2, 30, 3, 33, None)
    # the task: every call, the meta-supervisor's (no team) included
    assert (task.llm_calls, task.input_tokens, task.output_tokens, task.total_tokens) == (
        7,
        1080,
        198,
        1278,
    )
    assert task.cost_usd is None  # one call was not priced
    assert task.llm_calls == content.usage.llm_calls + verification.usage.llm_calls + 1


async def test_priced_calls_sum_to_the_task_cost(event_log: EventLog) -> None:
    task_id = await new_task(event_log)
    await event_log.append(task_id, Event.task_status(TaskStatus.RUNNING))
    async with event_log.session_factory() as session:
        fresh = await repository.get_task(session=session, task_id=task_id)
    assert fresh is not None and fresh.cost_usd == 0.0  # no call yet: nothing spent
    for event in [
        usage(None, "meta_supervisor", (1, 1), 0.1),
        usage("content_team", "paper_researcher", (1, 1), 0.2),
        usage("verification_team", "verification_supervisor", (1, 1), 0.3),
    ]:
        await event_log.append(task_id, event)
    async with event_log.session_factory() as session:
        task = await repository.get_task(session=session, task_id=task_id)
    assert task is not None
    teams = Teams.load(task.teams)
    assert task.cost_usd == 0.6  # rounded sums: 0.1 + 0.2 + 0.3 is 0.6, not 0.6000000000000001
    assert teams.team("content_team").usage.cost_usd == 0.2
    assert teams.team("verification_team").usage.cost_usd == 0.3
    assert all(a.usage.llm_calls == 0 for a in teams.team("verification_team").agents)


def test_a_snapshot_stored_before_usage_was_kept_still_loads() -> None:
    stored = [{"name": "content_team", "agents": [{"name": "paper_researcher"}]}]
    team = Teams.load(stored)[0]
    assert team.usage == UsageSnapshot() and team.agents[0].usage.llm_calls == 0
