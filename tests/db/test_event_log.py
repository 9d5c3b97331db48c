"""The event log on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import json

import pytest
from broadcaster import Broadcast

from agents.teams.state import initial_teams
from db import repository
from db.engine import SessionFactory, create_engine, create_session_factory
from db.enums import EventKind, TaskKind, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskNotFoundError
from db.events import Event
from db.models import LOCAL_OWNER, PostRequest
from db.snapshot import Teams

pytestmark = pytest.mark.anyio


async def new_task(log: EventLog | SessionFactory, owner: str = LOCAL_OWNER) -> str:
    """A new PENDING generation task of `owner`, through `log`'s sessions (or these)."""
    sessions = log.session_factory if isinstance(log, EventLog) else log
    async with sessions() as session:
        task = await repository.create_task(
            session=session,
            request=PostRequest(paper_title="Attention Is All You Need"),
            kind=TaskKind.GENERATE,
            teams=initial_teams(),
            owner=owner,
        )
    return task.id


async def seqs_of(log: EventLog, task_id: str) -> list[int]:
    async with log.session_factory() as session:
        rows = await repository.list_agent_logs(session=session, task_id=task_id, limit=10_000)
    return [r.seq for r in rows]


async def test_concurrent_appends_get_gapless_seq(event_log: EventLog, database_url: str) -> None:
    # A second EventLog on its own engine plays a second process: no shared lock.
    other_engine = create_engine(database_url)
    other = EventLog(
        session_factory=create_session_factory(other_engine), broadcast=event_log.broadcast
    )
    tasks = [await new_task(event_log) for _ in range(3)]
    per_task = 40

    async def burst(log: EventLog, task_id: str, n: int) -> None:
        for i in range(n):
            await log.append(task_id, Event(EventKind.MESSAGE, message=f"m{i}"))

    await asyncio.gather(
        *(
            burst(log, task_id, per_task // 4)
            for task_id in tasks
            for log in (event_log, other, event_log, other)
        )
    )
    for task_id in tasks:
        assert await seqs_of(event_log, task_id) == list(range(1, per_task + 1))
        async with event_log.session_factory() as session:
            task = await repository.get_task(session=session, task_id=task_id)
        assert task is not None and task.last_seq == per_task
    await other_engine.dispose()


async def test_follow_replays_after_seq_then_live_and_ends_at_terminal(
    event_log: EventLog,
) -> None:
    task_id = await new_task(event_log)
    for i in range(3):
        await event_log.append(task_id, Event(EventKind.MESSAGE, message=f"stored {i}"))
    seen: list[int] = []
    started = asyncio.Event()

    async def consume() -> None:
        async for event in event_log.follow(task_id, after_seq=1):
            seen.append(event.seq)
            if event.seq == 3:
                started.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    await event_log.append(task_id, Event(EventKind.MESSAGE, message="live 1"))
    await event_log.append(task_id, Event(EventKind.MESSAGE, message="live 2"))
    await event_log.append(task_id, Event.task_status(TaskStatus.COMPLETED))
    await asyncio.wait_for(consumer, 5)  # ends by itself after the terminal event
    assert seen == [2, 3, 4, 5, 6]


async def test_follow_survives_lost_notices(database_url: str) -> None:
    """The bus is at-most-once: with every notice dropped, the poll still delivers all."""

    class DroppingBroadcast(Broadcast):
        async def publish(self, channel: str, message: str) -> None:
            return None

    bus = DroppingBroadcast("memory://")
    await bus.connect()
    engine = create_engine(database_url)
    log = EventLog(
        session_factory=create_session_factory(engine), broadcast=bus, poll_interval=0.05
    )
    task_id = await new_task(log)

    async def produce() -> None:
        for i in range(5):
            await log.append(task_id, Event(EventKind.MESSAGE, message=f"m{i}"))
            await asyncio.sleep(0.02)
        await log.append(task_id, Event.task_status(TaskStatus.FAILED))

    producer = asyncio.create_task(produce())
    seen = [e.seq async for e in log.follow(task_id)]
    await producer
    assert seen == [1, 2, 3, 4, 5, 6]
    await bus.disconnect()
    await engine.dispose()


async def test_follow_after_the_end_returns_nothing_and_unknown_task_raises(
    event_log: EventLog,
) -> None:
    task_id = await new_task(event_log)
    await event_log.append(task_id, Event.task_status(TaskStatus.CANCELLED))
    assert [e.seq async for e in event_log.follow(task_id, after_seq=1)] == []
    assert [e.seq async for e in event_log.follow(task_id, after_seq=0)] == [1]
    with pytest.raises(TaskNotFoundError):
        async for _ in event_log.follow("no-such-task"):
            pass


async def test_no_event_after_terminal_and_nothing_written_on_error(event_log: EventLog) -> None:
    task_id = await new_task(event_log)
    await event_log.append(task_id, Event.task_status(TaskStatus.RUNNING))
    with pytest.raises(ValueError):
        await event_log.append(task_id, Event(EventKind.MESSAGE, progress=1.5))
    with pytest.raises(ValueError):
        await event_log.append(task_id, Event(EventKind.MESSAGE, result={"status": "x"}))
    await event_log.append(task_id, Event.task_status(TaskStatus.COMPLETED))
    with pytest.raises(TaskClosedError):
        await event_log.append(task_id, Event(EventKind.MESSAGE, message="too late"))
    with pytest.raises(TaskNotFoundError):
        await event_log.append("missing", Event(EventKind.MESSAGE))
    assert await seqs_of(event_log, task_id) == [1, 2]


async def test_snapshot_folds_team_agent_status_usage_and_results(event_log: EventLog) -> None:
    task_id = await new_task(event_log)
    append = event_log.append
    await append(task_id, Event.task_status(TaskStatus.RUNNING))
    await append(task_id, Event(EventKind.TEAM_STARTED, team="content_team"))
    await append(
        task_id,
        Event(
            EventKind.AGENT_STARTED,
            team="content_team",
            agent="paper_researcher",
            message="researching",
        ),
    )
    await append(
        task_id,
        Event(
            EventKind.LLM_USAGE,
            team="content_team",
            agent="paper_researcher",
            data={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        ),
    )
    async with event_log.session_factory() as session:
        mid = await repository.get_task(session=session, task_id=task_id)
    assert mid is not None
    assert (mid.status, mid.current_team, mid.current_agent) == (
        "RUNNING",
        "content_team",
        "paper_researcher",
    )
    researcher = Teams.load(mid.teams)[0].agents[0]
    assert (researcher.status, researcher.activity) == ("WORKING", "researching")

    await append(
        task_id,
        Event(
            EventKind.AGENT_FINISHED,
            "notes ready",
            team="content_team",
            agent="paper_researcher",
            progress=0.25,
            result={"research_notes": {"summary": "s" * 5000}},
            data={"long": "x" * 5000},
        ),
    )
    await append(task_id, Event.task_status(TaskStatus.COMPLETED, progress=1.0))
    async with event_log.session_factory() as session:
        done = await repository.get_task(session=session, task_id=task_id)
        rows = await repository.list_agent_logs(session=session, task_id=task_id)
    assert done is not None
    team = Teams.load(done.teams)[0]
    # the task ended while the team was working: it shows what ended it, not WORKING
    assert team.status == "COMPLETED" and team.progress == 0.5
    assert team.agents[0].status == "COMPLETED"
    assert (done.llm_calls, done.total_tokens) == (1, 15)
    assert done.research_notes["summary"] == "s" * 5000  # large text lives on the task
    assert done.status == "COMPLETED" and done.progress == 1.0 and done.completed_at
    assert done.current_team is None
    assert len(json.dumps(rows[4].data)) < 1000  # event payloads stay small


@pytest.mark.parametrize(("ending", "after"), [("FAILED", "ERROR"), ("CANCELLED", "IDLE")])
async def test_a_task_that_ends_leaves_nothing_working(
    event_log: EventLog, ending: str, after: str
) -> None:
    task_id = await new_task(event_log)
    await event_log.append(task_id, Event.task_status(TaskStatus.RUNNING))
    await event_log.append(task_id, Event(EventKind.TEAM_STARTED, team="content_team"))
    started = Event(
        EventKind.AGENT_STARTED, "writing", team="content_team", agent="linkedin_creator"
    )
    await event_log.append(task_id, started)
    await event_log.append(task_id, Event.task_status(TaskStatus(ending)))
    async with event_log.session_factory() as session:
        task = await repository.get_task(session=session, task_id=task_id)
    assert task is not None
    team = Teams.load(task.teams)[0]
    assert team.status == after
    assert [a.status for a in team.agents] == ["IDLE", after]


async def test_status_notices_name_the_owner(event_log: EventLog) -> None:
    task_id = await new_task(event_log, owner="key:0123abcd")
    received: list[dict] = []

    async def listen() -> None:
        async for notice in event_log.follow_status():
            if notice["task_id"] == task_id:
                received.append(notice)
                return

    listening = asyncio.create_task(listen())
    async with asyncio.timeout(10):
        while not received:  # the bus may subscribe late: keep changing until one arrives
            await asyncio.sleep(0.3)
            await event_log.append(task_id, Event.task_status(TaskStatus.RUNNING))
    await listening
    assert received[0]["status"] == "RUNNING" and received[0]["owner"] == "key:0123abcd"
