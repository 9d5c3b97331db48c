"""The runner on a real SQLite file: concurrency, cancel, timeout, failures, recovery."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents.llm import ModelUnavailableError
from agents.runner import Runner
from agents.state import initial_teams
from db import repository
from db.event_log import EventLog, TaskClosedError
from db.events import Event
from db.models import EventKind, PostRequest, Task, TaskKind, TaskStatus
from tests.fakes import ScriptedChatModel, scripted

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(
    paper_title="Attention Is All You Need",
    additional_context="The Transformer relies on attention alone.",
    target_audience="engineers",
    tone="CASUAL",
    include_technical_details=False,
    max_hashtags=3,
)


@pytest.fixture
def log(event_log: EventLog) -> EventLog:
    """The shared event log (SQLite and PostgreSQL, memory and Redis buses)."""
    return event_log


def blocking_model(gate: threading.Event) -> ScriptedChatModel:
    """The scripted model, but every call first waits for `gate` (in the worker thread)."""
    inner = scripted()

    def handler(messages, tools):  # type: ignore[no-untyped-def]
        gate.wait(30)
        return inner.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=[])


async def task_of(log: EventLog, task_id: str) -> Task:
    async with log.session_factory() as session:
        task = await repository.get_task(session=session, task_id=task_id)
    assert task is not None
    return task


async def events_of(log: EventLog, task_id: str) -> list:
    async with log.session_factory() as session:
        return await repository.list_agent_logs(session=session, task_id=task_id, limit=1000)


async def wait_for_status(log: EventLog, task_id: str, *statuses: str) -> Task:
    async with asyncio.timeout(20):
        while (task := await task_of(log, task_id)).status not in statuses:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return task


def assert_clean_log(events: list) -> None:
    """Gapless seq, one terminal event, and it is the last."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    terminal = [
        e
        for e in events
        if e.kind == EventKind.TASK_STATUS
        and e.data["status"] in ("COMPLETED", "FAILED", "CANCELLED")
    ]
    assert terminal == [events[-1]]


async def test_at_most_max_concurrent_tasks_run(log: EventLog) -> None:
    gate = threading.Event()
    runner = Runner(event_log=log, model_factory=lambda: blocking_model(gate), max_concurrent=1)
    first = await runner.create_generation(REQUEST)
    second = await runner.create_generation(REQUEST)
    await wait_for_status(log, first.id, "RUNNING")
    await asyncio.sleep(0.2)
    assert (await task_of(log, second.id)).status == "PENDING"
    gate.set()
    for task in (first, second):
        done = await wait_for_status(log, task.id, "COMPLETED")
        assert done.progress == 1.0 and done.content
        assert_clean_log(await events_of(log, task.id))


async def test_cancel_a_running_task(log: EventLog) -> None:
    gate = threading.Event()
    runner = Runner(event_log=log, model_factory=lambda: blocking_model(gate))
    task = await runner.create_generation(REQUEST)
    await wait_for_status(log, task.id, "RUNNING")
    cancelled = await runner.cancel(task.id)
    gate.set()
    assert cancelled.status == "CANCELLED" and cancelled.completed_at
    assert_clean_log(await events_of(log, task.id))
    with pytest.raises(TaskClosedError):
        await runner.cancel(task.id)


async def test_timeout_fails_the_task_with_a_code(log: EventLog) -> None:
    gate = threading.Event()
    runner = Runner(event_log=log, model_factory=lambda: blocking_model(gate), timeout=0.3)
    task = await runner.create_generation(REQUEST)
    failed = await wait_for_status(log, task.id, "FAILED")
    gate.set()
    assert failed.error_code == "TIMEOUT" and "0.3s" in (failed.error or "")
    assert_clean_log(await events_of(log, task.id))


async def test_failures_are_recorded_and_the_runner_keeps_working(log: EventLog) -> None:
    def unavailable() -> ScriptedChatModel:
        raise ModelUnavailableError("the local model server exited with code -11")

    runner = Runner(event_log=log, model_factory=unavailable)
    task = await runner.create_generation(REQUEST)
    failed = await wait_for_status(log, task.id, "FAILED")
    assert failed.error_code == "MODEL_UNAVAILABLE" and "-11" in (failed.error or "")

    def broken(messages, tools):  # type: ignore[no-untyped-def]
        raise KeyError("surprise")

    runner.model_factory = lambda: ScriptedChatModel(handler=broken, calls=[])
    task = await runner.create_generation(REQUEST)
    failed = await wait_for_status(log, task.id, "FAILED")
    assert failed.error_code == "INTERNAL_ERROR" and "surprise" in (failed.error or "")
    events = await events_of(log, task.id)
    assert_clean_log(events)
    assert any(e.kind == EventKind.AGENT_ERROR for e in events)

    runner.model_factory = scripted
    task = await runner.create_generation(REQUEST)
    assert (await wait_for_status(log, task.id, "COMPLETED", "FAILED")).status == "COMPLETED"


async def test_recover_fails_interrupted_tasks_and_requeues_pending_ones(log: EventLog) -> None:
    async with log.session_factory() as session:
        running, pending = [
            await repository.create_task(
                session=session, request=REQUEST, kind=TaskKind.GENERATE, teams=initial_teams()
            )
            for _ in range(2)
        ]
    await log.append(running.id, Event.task_status(TaskStatus.RUNNING))

    runner = Runner(event_log=log, model_factory=scripted)
    assert await runner.recover() == 2
    interrupted = await wait_for_status(log, running.id, "FAILED")
    assert interrupted.error_code == "INTERRUPTED"
    assert (await wait_for_status(log, pending.id, "COMPLETED")).content


async def test_shutdown_interrupts_running_tasks(log: EventLog) -> None:
    gate = threading.Event()
    runner = Runner(event_log=log, model_factory=lambda: blocking_model(gate))
    task = await runner.create_generation(REQUEST)
    await wait_for_status(log, task.id, "RUNNING")
    await runner.shutdown()
    gate.set()
    stopped = await task_of(log, task.id)
    assert (stopped.status, stopped.error_code) == ("FAILED", "INTERRUPTED")
    assert_clean_log(await events_of(log, task.id))
