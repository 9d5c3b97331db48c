"""Shared tails (`db.tails`): followers of one task share one reader, rows written in the
process need no read, no timer reads while a watching bus is up, and nothing is lost or
repeated when a follower falls behind or rows come from another process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from broadcaster import Broadcast
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from db.bus import broadcast_for
from db.engine import create_engine, create_session_factory
from db.enums import EventKind, TaskStatus
from db.event_log import EventLog
from db.events import Event
from db.inbox import INBOX_LIMIT, FollowerLaggedError
from db.migrate import upgrade_to_head
from tests.conftest import service_missing
from tests.db.test_event_log import new_task, seqs_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> str:
    """A SQLite file migrated to head (the cases that need one process's view only)."""
    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine)
    await engine.dispose()
    return sqlite_url


@contextlib.contextmanager
def counting_reads(engine: AsyncEngine, table: str) -> Iterator[list[str]]:
    """The SELECTs from `table` that run on `engine` while the block runs."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def until_quiet(reads: list[str], quiet: float = 0.2) -> None:
    """Wait until no read was counted for `quiet` seconds, then forget the reads (the
    followers' replays are over: what is counted next is the live path's)."""
    while True:
        before = len(reads)
        await asyncio.sleep(quiet)
        if len(reads) == before:
            reads.clear()
            return


@contextlib.asynccontextmanager
async def log_on(
    url: str, broadcast: Broadcast, poll: float = 60.0
) -> AsyncIterator[tuple[EventLog, AsyncEngine]]:
    """An EventLog with an engine of its own (a process of its own, as far as the
    database and the tails are concerned)."""
    engine = create_engine(url)
    try:
        yield (
            EventLog(
                session_factory=create_session_factory(engine),
                broadcast=broadcast,
                poll_interval=poll,
            ),
            engine,
        )
    finally:
        await engine.dispose()


async def collect(log: EventLog, task_id: str, out: list[int], ready: asyncio.Event) -> None:
    """Follow `task_id` from the start into `out` (its seqs); `ready` once it waits."""
    async for row in log.follow(task_id):
        out.append(row.seq)
        if row.kind == EventKind.TASK_STATUS and row.data["status"] == TaskStatus.RUNNING:
            ready.set()


async def write_run(log: EventLog, task_id: str, messages: int) -> None:
    """RUNNING, `messages` messages, COMPLETED."""
    await log.append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
    for i in range(messages):
        await log.append(task_id, Event(EventKind.MESSAGE, message=f"m{i}"))
    await log.append(task_id, Event.task_status(TaskStatus.COMPLETED, "done"))


async def followed_run(
    reader: EventLog, writer: EventLog, engine: AsyncEngine, *, followers: int, messages: int
) -> tuple[list[list[int]], list[int], list[str]]:
    """`followers` followers of a new task on `reader`, then RUNNING, `messages` messages
    and COMPLETED written through `writer`: what each follower saw (seqs), what is
    stored, and the `agent_log` reads on `engine` once the followers' replays were over."""
    task_id = await new_task(writer)
    await writer.append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
    seen: list[list[int]] = [[] for _ in range(followers)]
    ready = [asyncio.Event() for _ in range(followers)]
    running = [
        asyncio.create_task(collect(reader, task_id, s, r))
        for s, r in zip(seen, ready, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in ready))
    with counting_reads(engine, "agent_log") as reads:
        await until_quiet(reads)  # the followers' replays are over
        for i in range(messages):
            await writer.append(task_id, Event(EventKind.MESSAGE, message=f"m{i}"))
        await writer.append(task_id, Event.task_status(TaskStatus.COMPLETED, "done"))
        await asyncio.wait_for(asyncio.gather(*running), 10)
    return seen, await seqs_of(writer, task_id), reads


async def test_followers_in_one_process_share_the_rows_it_writes(sqlite_db: str) -> None:
    bus = broadcast_for("memory://")
    await bus.connect()
    async with log_on(sqlite_db, bus) as (log, engine):
        seen, stored, reads = await followed_run(log, log, engine, followers=25, messages=30)
    await bus.disconnect()
    assert len(stored) == 32  # RUNNING, 30 messages, COMPLETED: all, in order, to every one
    assert all(s == stored for s in seen), seen
    # 31 events x 25 followers were handed over as committed; one read each would be 775
    assert len(reads) == 0, reads


async def test_rows_from_another_process_are_read_once_per_notice_not_per_follower(
    database_url: str, broadcast: Broadcast
) -> None:
    messages = 20
    async with (
        log_on(database_url, broadcast) as (reader, engine),
        log_on(database_url, broadcast) as (writer, _),
    ):
        seen, stored, reads = await followed_run(
            reader, writer, engine, followers=10, messages=messages
        )
    assert len(stored) == messages + 2
    assert all(s == stored for s in seen), seen
    # at most one read per event for all ten followers (notices that come together share one)
    assert 1 <= len(reads) <= messages + 1, len(reads)


@pytest.mark.redis
async def test_no_timer_reads_while_redis_is_up(sqlite_db: str) -> None:
    from tests.conftest import REDIS_URL

    watching = broadcast_for(REDIS_URL)  # its lost notices come with a wake-up
    blind = broadcast_for("memory://")  # within one process only: polls, to be safe
    try:
        await asyncio.wait_for(watching.connect(), 5)
    except (OSError, TimeoutError) as exc:
        service_missing(f"Redis is not reachable: {exc}")
    await blind.connect()
    reads_of: dict[str, int] = {}
    for name, bus in (("watching", watching), ("blind", blind)):
        async with log_on(sqlite_db, bus, poll=0.05) as (log, engine):
            task_id = await new_task(log)
            await log.append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
            ready, seen = asyncio.Event(), []
            follower = asyncio.create_task(collect(log, task_id, seen, ready))
            await ready.wait()
            with counting_reads(engine, "agent_log") as reads:
                await asyncio.sleep(0.3)  # the follower's replay is over (a blind bus polls on)
                reads.clear()
                await asyncio.sleep(0.5)  # ten poll intervals with nothing written
            reads_of[name] = len(reads)
            await log.append(task_id, Event.task_status(TaskStatus.COMPLETED, "done"))
            await asyncio.wait_for(follower, 5)
            assert seen == [1, 2]
    for bus in (watching, blind):
        await bus.disconnect()
    assert reads_of["watching"] == 0
    assert reads_of["blind"] >= 5  # the test sees the timer where there is one


async def test_a_follower_that_falls_behind_reads_what_its_inbox_dropped(sqlite_db: str) -> None:
    bus = broadcast_for("memory://")
    await bus.connect()
    async with log_on(sqlite_db, bus) as (log, _):
        task_id = await new_task(log)
        await log.append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
        follow = log.follow(task_id)
        seen = [(await anext(follow)).seq]  # RUNNING; from now on live
        total = INBOX_LIMIT + 50
        for chunk in range(0, total, 100):  # more than the inbox holds, none taken
            events = [Event(EventKind.MESSAGE, message=f"m{i}") for i in range(chunk, chunk + 100)]
            await log.append_many(task_id, events[: total - chunk])
        await log.append(task_id, Event.task_status(TaskStatus.COMPLETED, "done"))
        seen += [row.seq async for row in follow]
    await bus.disconnect()
    assert seen == list(range(1, total + 3))


async def test_status_followers_share_one_read_per_change_and_a_stuck_one_is_ended(
    sqlite_db: str,
) -> None:
    bus = broadcast_for("memory://")
    await bus.connect()
    async with log_on(sqlite_db, bus) as (log, engine):
        first, second = log.follow_status(), log.follow_status()
        starts = [asyncio.ensure_future(anext(f)) for f in (first, second)]
        await asyncio.sleep(0.2)  # both have joined and wait
        task_id = await new_task(log)
        with counting_reads(engine, "agent_log") as reads:
            await write_run(log, task_id, messages=0)
            got = await asyncio.wait_for(asyncio.gather(*starts), 5)
            more = [await asyncio.wait_for(anext(f), 5) for f in (first, second)]
        assert [n["status"] for n in got] == ["RUNNING", "RUNNING"]
        assert [n["status"] for n in more] == ["COMPLETED", "COMPLETED"]
        assert len(reads) <= 3  # per change, for both followers (was one per follower)
        await first.aclose()
        # `second` takes nothing more: past its inbox's limit of changes it is ended
        log.tails.status_inbox_limit = 4
        third = log.follow_status()
        joined = asyncio.ensure_future(anext(third))
        await asyncio.sleep(0.2)
        for _ in range(3):
            await write_run(log, await new_task(log), messages=0)
        assert (await joined)["status"] == "RUNNING"  # taken; the five after it are not
        await asyncio.sleep(0.5)  # the status tail has handed them out: the inbox overflowed
        with pytest.raises(FollowerLaggedError):
            while True:
                await asyncio.wait_for(anext(third), 5)
        await second.aclose()
    await bus.disconnect()


@pytest.mark.redis
async def test_a_lone_follower_over_redis_gets_live_events_not_the_poll(sqlite_db: str) -> None:
    # Two buses on the shared Redis: the writer's notices cross a real Redis connection.
    # With a 60 s poll, an event arrives in time only because its notice woke the tail.
    from tests.conftest import REDIS_URL

    buses = [broadcast_for(REDIS_URL), broadcast_for(REDIS_URL)]
    for bus in buses:
        try:
            await asyncio.wait_for(bus.connect(), 5)
        except (OSError, TimeoutError) as exc:
            service_missing(f"Redis is not reachable: {exc}")
    async with (
        log_on(sqlite_db, buses[0], poll=60.0) as (reader, _),
        log_on(sqlite_db, buses[1], poll=60.0) as (writer, _),
    ):
        task_id = await new_task(writer)
        await writer.append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
        follow = reader.follow(task_id)
        assert (await anext(follow)).seq == 1
        for seq in range(2, 7):
            kind = Event.task_status(TaskStatus.COMPLETED, "done") if seq == 6 else None
            await writer.append(task_id, kind or Event(EventKind.MESSAGE, message=f"m{seq}"))
            row = await asyncio.wait_for(anext(follow), 5)  # a timeout, far below the poll
            assert row.seq == seq
        with pytest.raises(StopAsyncIteration):
            await anext(follow)
    for bus in buses:
        await bus.disconnect()


async def test_a_follower_joins_a_new_tail_when_a_retried_task_goes_on(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # B joins the tail, but its first read is held until the tail has ended at FAILED and
    # the task was retried: B must follow the retry on a new tail, not wait on the old one.
    from db import event_log as event_log_module
    from db import repository

    bus = broadcast_for("memory://")
    await bus.connect()
    async with log_on(sqlite_db, bus) as (log, _):
        task_id = await new_task(log)
        running = await log.append(task_id, Event.task_status(TaskStatus.RUNNING, "go"))
        gate, held = asyncio.Event(), [True]
        real_get_task = repository.get_task

        async def held_once(**kwargs: object) -> object:
            if held[0]:
                held[0] = False
                await gate.wait()
            return await real_get_task(**kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(event_log_module.repository, "get_task", held_once)
        seen: list[str] = []

        async def follow_b() -> None:
            async for row in log.follow(task_id, after_seq=running.seq + 1):
                seen.append(row.data.get("status") or row.kind)

        follower = asyncio.create_task(follow_b())
        await asyncio.sleep(0.05)  # B is in its first read, and the tail has started
        monkeypatch.setattr(event_log_module.repository, "get_task", real_get_task)
        await log.append(task_id, Event.task_status(TaskStatus.FAILED, "boom"))
        async with log.session_factory() as session:
            reopened = await log.reopen(session, task_id)
            await session.commit()
        assert reopened is not None
        await log.publish(reopened)
        gate.set()
        await asyncio.sleep(0.2)
        await write_run(log, task_id, messages=1)
        await asyncio.wait_for(follower, 5)
    await bus.disconnect()
    assert seen == ["PENDING", "RUNNING", "MESSAGE", "COMPLETED"]
