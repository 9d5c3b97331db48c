"""`TaskService.wait` is woken by the event log's follow, not by polling: it returns as
soon as the terminal event is written, reads nothing while the task runs, and misses no
terminal event written between its read of the task and the start of its follow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from broadcaster import Broadcast

from agents.runtime.tasks import TaskService
from agents.teams.state import initial_teams
from db import repository
from db.broadcaster_compat import BroadcastInternals
from db.engine import create_engine, create_session_factory
from db.enums import TaskKind, TaskStatus
from db.event_log import EventLog, TaskNotFoundError, task_channel
from db.events import Event
from db.models import PostRequest, Task

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(paper_title="Attention Is All You Need", additional_context="attention")
#: The follow's own poll: far longer than any wait below, so only a wake-up by the bus
#: (or a poll of wait's own) could end one in time.
NEVER = 3600.0


@pytest.fixture
async def service(database_url: str, broadcast: Broadcast) -> AsyncIterator[TaskService]:
    engine = create_engine(database_url)
    log = EventLog(
        session_factory=create_session_factory(engine),
        broadcast=broadcast,
        poll_interval=NEVER,
        down_poll_interval=NEVER,
    )
    yield TaskService(event_log=log, client=None)  # type: ignore[arg-type]
    await engine.dispose()


async def running(service: TaskService) -> Task:
    async with service.session_factory() as session:
        task = await repository.create_task(
            session=session, request=REQUEST, kind=TaskKind.VERIFY, teams=initial_teams()
        )
    await service.event_log.append(task.id, Event.task_status(TaskStatus.RUNNING))
    return task


def count_sessions(log: EventLog) -> Callable[[], int]:
    """Count the sessions `log` opens from now on (each read opens one)."""
    opened = 0
    factory = log.session_factory

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        opened += 1
        return factory(*args, **kwargs)

    log.session_factory = counting  # type: ignore[assignment]
    return lambda: opened


async def test_wait_reads_nothing_while_the_task_runs_and_wakes_at_its_end(
    service: TaskService,
) -> None:
    task = await running(service)
    opened = count_sessions(service.event_log)
    waiting = asyncio.create_task(service.wait(task.id))
    await asyncio.sleep(0.2)
    settled = opened()
    await asyncio.sleep(1.0)  # a 50 ms poll would read the task 20 times here
    assert not waiting.done() and opened() == settled <= 3
    await service.event_log.append(task.id, Event.task_status(TaskStatus.COMPLETED))
    async with asyncio.timeout(5):
        done = await waiting
    assert done.status == TaskStatus.COMPLETED


async def test_wait_misses_no_end_written_before_its_follow_starts(
    service: TaskService,
) -> None:
    task = await running(service)
    log = service.event_log
    follow = log.follow

    async def late_follow(task_id: str, *, after_seq: int = 0) -> AsyncIterator[Any]:
        # The task ends after wait read it RUNNING and before the follow subscribes.
        await log.append(task_id, Event.task_status(TaskStatus.FAILED, "gone"))
        async for row in follow(task_id, after_seq=after_seq):
            yield row

    log.follow = late_follow  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        done = await service.wait(task.id)
    assert done.status == TaskStatus.FAILED


async def test_wait_returns_a_finished_task_and_refuses_an_unknown_one(
    service: TaskService,
) -> None:
    task = await running(service)
    await service.event_log.append(task.id, Event.task_status(TaskStatus.CANCELLED))
    async with asyncio.timeout(5):
        assert (await service.wait(task.id)).status == TaskStatus.CANCELLED
    with pytest.raises(TaskNotFoundError):
        await service.wait("no-such-task")


async def test_a_timed_out_wait_leaves_no_subscription(service: TaskService) -> None:
    task = await running(service)
    bus = service.event_log.broadcast
    assert isinstance(bus, BroadcastInternals)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.3):
            await service.wait(task.id)
    assert not bus.subscribers.get(task_channel(task.id))
