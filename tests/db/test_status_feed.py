"""`StatusFeed` (the database side of `taskUpdates`) on a real SQLite file and a real
PostgreSQL database: rows committed out of id order, holes that never fill, the start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.engine import SessionFactory, create_engine, create_session_factory
from db.enums import EventKind
from db.models import AgentLog
from db.status_feed import StatusFeed
from tests.db.test_event_log import new_task

pytestmark = pytest.mark.anyio


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def insert(sessions: SessionFactory, task_id: str, row_id: int, status: str = "") -> None:
    """Commit the row `row_id` (its seq too): a TASK_STATUS event when `status` is set,
    else a message. Explicit ids stand for ids a sequence handed out earlier."""
    kind = EventKind.TASK_STATUS if status else EventKind.MESSAGE
    async with sessions() as session:
        session.add(
            AgentLog(
                id=row_id,
                task_id=task_id,
                seq=row_id,
                kind=kind.value,
                data={"status": status} if status else {},
            )
        )
        await session.commit()


def statuses(notices: list[dict]) -> list[tuple[int, str]]:
    return [(n["seq"], n["status"]) for n in notices]


async def test_a_late_commit_of_an_earlier_id_is_delivered_once(sessions: SessionFactory) -> None:
    task_id = await new_task(sessions, owner="key:abc")
    await insert(sessions, task_id, 1, "RUNNING")
    clock = Clock()
    feed = StatusFeed(sessions, clock=clock)
    await feed.start()  # row 1 is before the start
    await insert(sessions, task_id, 3, "AWAITING_REVIEW")
    await insert(sessions, task_id, 4)
    notices = await feed.read()
    assert statuses(notices) == [(3, "AWAITING_REVIEW")]
    expected = {"task_id": task_id, "seq": 3, "status": "AWAITING_REVIEW", "owner": "key:abc"}
    assert notices[0] == expected
    assert feed.floor == 1  # id 2 may still commit
    clock.now += 5
    await insert(sessions, task_id, 2, "RUNNING")  # id 2 commits after 3 and 4
    assert statuses(await feed.read()) == [(2, "RUNNING")]
    assert feed.floor == 4 and feed.seen == set()
    assert await feed.read() == []


async def test_a_hole_that_never_fills_is_passed_after_the_grace(sessions: SessionFactory) -> None:
    task_id = await new_task(sessions, owner="local")
    clock = Clock()
    feed = StatusFeed(sessions, clock=clock, hole_grace=10.0)
    await feed.start()
    await insert(sessions, task_id, 1)
    await insert(sessions, task_id, 3, "RUNNING")  # id 2: a rolled-back insert
    assert statuses(await feed.read()) == [(3, "RUNNING")]
    clock.now += 9.9
    assert await feed.read() == [] and feed.floor == 1
    clock.now += 0.1
    assert await feed.read() == [] and feed.floor == 3
    await insert(sessions, task_id, 4, "COMPLETED")
    assert statuses(await feed.read()) == [(4, "COMPLETED")]


async def test_the_start_takes_holes_below_the_end_as_pending(sessions: SessionFactory) -> None:
    """An id taken before the start and committed after it is a change after the start."""
    task_id = await new_task(sessions, owner="local")
    for row_id in (1, 2, 4):
        await insert(sessions, task_id, row_id, "RUNNING")
    feed = StatusFeed(sessions, clock=Clock())
    await feed.start()
    assert await feed.read() == []  # 1, 2 and 4 were there before
    await insert(sessions, task_id, 3, "COMPLETED")
    assert statuses(await feed.read()) == [(3, "COMPLETED")]


async def test_reads_page_through_more_rows_than_a_batch(sessions: SessionFactory) -> None:
    task_id = await new_task(sessions, owner="local")
    feed = StatusFeed(sessions, clock=Clock(), batch=3)
    await feed.start()
    for row_id in range(1, 9):
        await insert(sessions, task_id, row_id, "RUNNING" if row_id % 2 else "")
    assert [seq for seq, _ in statuses(await feed.read())] == [1, 3, 5, 7]
    assert feed.floor == 8
