"""Shared tails: one reader per followed task, and one of every task's status changes,
per process, handing what they read to every follower in the process.

Without them each follower read the database on every notice (and every poll): N
followers of a task cost N reads per event. A `TaskTail` reads each event once (or not at
all: an event this process wrote is handed over by `EventLog.publish` as committed) and
puts it in each follower's `Inbox`; a `StatusTail` reads each status change once for all
`taskUpdates` followers.

What stays with each follower (`db.event_log.EventLog.follow`): its replay from its own
`after_seq`, and the check that every row it yields is the next `seq`. A follower that
finds a gap, or whose inbox overflowed, reads the database itself, then goes on with
its inbox: a tail can delay a follower, never make it lose or repeat an event.

Imports: `db.bus`, `db.engine`, `db.inbox`, `db.models`, `db.repository`, `db.status_feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from broadcaster import Broadcast
from sqlalchemy.exc import SQLAlchemyError

from db import repository
from db.broadcaster_compat import Subscriber
from db.bus import WAKE_UP, bus_state, watches_outages
from db.engine import SessionFactory
from db.enums import TaskStatus
from db.events import is_terminal_event
from db.inbox import INBOX_LIMIT, Inbox
from db.models import AgentLog
from db.status_feed import StatusFeed

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Channel that carries every task's status changes (for `taskUpdates`).
TASKS_CHANNEL = "tasks"


def task_channel(task_id: str) -> str:
    """Return the broadcast channel name of one task's events: `task:<id>`."""
    return f"task:{task_id}"


#: Seconds a tail waits before it reads again after a database error.
RETRY_SECONDS = 1.0
#: The errors a tail retries (the database, or the connection to it, failed); any other
#: error stops the tail and is raised to its followers.
DATABASE_ERRORS = (SQLAlchemyError, OSError)
#: Rows per read of a task's events.
READ_BATCH = 500


async def wait_for_notice(
    broadcast: Broadcast, subscriber: Subscriber, *, poll: float, down_poll: float
) -> str | None:
    """Until a notice arrives on `subscriber` (its message), or a timer ends (None).

    The timer: none while the bus is up and reports its outages (`watches_outages`: a
    lost notice would come with a wake-up), `poll` seconds on a bus that cannot tell,
    `min(poll, down_poll)` while the bus is down."""
    timeout: float | None = poll
    state = bus_state(broadcast)
    if not state.up:
        timeout = min(poll, down_poll)
    elif watches_outages(broadcast):
        timeout = None
    try:
        event = await asyncio.wait_for(subscriber.get(), timeout=timeout)
    except TimeoutError:
        return None
    return str(event.message)


def notice_seq(message: str | None) -> int | None:
    """The `seq` of a task notice (`{"task_id", "seq", "kind"}`); None for a wake-up,
    a timer or anything unreadable (which always means: read)."""
    if message is None or message == WAKE_UP:
        return None
    try:
        return int(json.loads(message)["seq"])
    except (ValueError, KeyError, TypeError):
        return None


class TaskTail:
    """The one reader of task `task_id`'s events in this process.

    Started by the first follower, stopped by the last one or after the terminal event.
    `last` is the highest `seq` it handed out (from the task's `last_seq` when it
    started: a follower replays what came before itself). It reads the database when
    a notice names a `seq` above `last`, at a bus wake-up and on the timer of
    `wait_for_notice`; rows this process committed come through `offer` without a read.
    """

    def __init__(self, tails: Tails, task_id: str) -> None:
        self.tails, self.task_id = tails, task_id
        self.inboxes: set[Inbox[AgentLog]] = set()
        self.last = 0
        self.ready = asyncio.Event()
        self.ended = False
        self.runner: asyncio.Task[None] | None = None

    def offer(self, row: AgentLog) -> None:
        """Hand out `row` if it is the next `seq` (an event committed in this process);
        any other row is left for a read."""
        if self.ready.is_set() and not self.ended and row.seq == self.last + 1:
            self._hand_out([row])

    def _hand_out(self, rows: list[AgentLog]) -> None:
        for row in rows:
            if row.seq != self.last + 1:
                continue  # at or below `last`: handed out already
            self.last = row.seq
            for inbox in self.inboxes:
                inbox.put(row)
            if is_terminal_event(row):
                self._end()
                return

    def _end(self) -> None:
        self.ended = True
        if self.tails.tasks.get(self.task_id) is self:
            del self.tails.tasks[self.task_id]
        for inbox in self.inboxes:
            inbox.close()  # after the rows already in it: the follower ends, or joins anew

    async def run(self) -> None:
        """Subscribe, take the start, then read whenever there may be new rows."""
        log = self.tails
        try:
            async with log.broadcast.subscribe(task_channel(self.task_id)) as subscriber:
                task = await self._retrying(self._read_task)
                self.last = 0 if task is None else task.last_seq
                self.ready.set()
                for inbox in self.inboxes:  # they replayed without waiting: read once more
                    inbox.nudge()
                if task is None or TaskStatus(task.status).is_terminal:
                    self._end()
                    return
                while not self.ended:
                    rows = await self._retrying(self._read_rows)
                    self._hand_out(rows)
                    if len(rows) == READ_BATCH or self.ended:
                        continue
                    while (seq := notice_seq(await self._wait(subscriber))) is not None:
                        if seq > self.last or self.ended:
                            break  # a row this process did not hand out (read), or the end
        except Exception as exc:  # not the database's (retried): its followers end with it
            logger.exception("the tail of task %s stopped", self.task_id)
            for inbox in self.inboxes:
                inbox.fail(exc)
            raise
        finally:
            self.ready.set()
            if not self.ended:
                self._end()

    async def _wait(self, subscriber: Subscriber) -> str | None:
        return await wait_for_notice(
            self.tails.broadcast,
            subscriber,
            poll=self.tails.poll_interval,
            down_poll=self.tails.down_poll_interval,
        )

    async def _read_task(self) -> Any:
        async with self.tails.session_factory() as session:
            return await repository.get_task(session=session, task_id=self.task_id)

    async def _read_rows(self) -> list[AgentLog]:
        async with self.tails.session_factory() as session:
            return await repository.list_agent_logs(
                session=session, task_id=self.task_id, after_seq=self.last, limit=READ_BATCH
            )

    async def _retrying(self, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`, again every `RETRY_SECONDS` while the database fails (followers wait;
        the database is the truth, and it will answer again)."""
        while True:
            try:
                return await read()
            except DATABASE_ERRORS:
                logger.exception("could not read the events of task %s", self.task_id)
                await asyncio.sleep(RETRY_SECONDS)


class StatusTail:
    """The one `StatusFeed` of this process: every status change read once, handed to
    each `taskUpdates` follower's inbox."""

    def __init__(self, tails: Tails) -> None:
        self.tails = tails
        self.inboxes: set[Inbox[dict[str, Any]]] = set()
        self.feed = StatusFeed(tails.session_factory)
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.members = 0  # followers, counted from before they wait for `ready`
        self.failure: BaseException | None = None
        self.runner: asyncio.Task[None] | None = None

    async def add(self, inbox: Inbox[dict[str, Any]]) -> None:
        """Read what was committed until now (handing it to the followers already here),
        then add `inbox`: it gets every change committed after this call."""
        await self.ready.wait()
        if self.failure is not None:
            raise self.failure
        await self._read()
        self.inboxes.add(inbox)

    async def _read(self) -> None:
        async with self.lock:  # handed out under the lock too: two reads never interleave
            for notice in await self.feed.read():
                for inbox in self.inboxes:
                    inbox.put(notice)

    async def run(self) -> None:
        """Subscribe to `tasks`, start the feed, then read at every notice or timer. An
        error other than the database's fails every follower and retires this tail (the
        next follower starts a new one)."""
        try:
            await self._run()
        except Exception as exc:
            logger.exception("the status tail stopped")
            for inbox in self.inboxes:
                inbox.fail(exc)
            if self.tails.status is self:
                self.tails.status = None
            self.failure = exc
            raise
        finally:
            self.ready.set()

    async def _run(self) -> None:
        tails = self.tails
        async with tails.broadcast.subscribe(TASKS_CHANNEL) as subscriber:
            while True:
                try:
                    await self.feed.start()
                    break
                except DATABASE_ERRORS:
                    logger.exception("could not start the status feed")
                    await asyncio.sleep(RETRY_SECONDS)
            self.ready.set()
            while True:
                await wait_for_notice(
                    tails.broadcast,
                    subscriber,
                    poll=tails.poll_interval,
                    down_poll=tails.down_poll_interval,
                )
                try:
                    await self._read()
                except DATABASE_ERRORS:
                    logger.exception("could not read task status changes")
                    await asyncio.sleep(RETRY_SECONDS)


class Tails:
    """This process's tails, by task id, and its status tail; `EventLog` owns one.

    `poll_interval` and `down_poll_interval` are `wait_for_notice`'s timers (seconds).
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        broadcast: Broadcast,
        *,
        poll_interval: float,
        down_poll_interval: float,
    ) -> None:
        self.session_factory, self.broadcast = session_factory, broadcast
        self.poll_interval, self.down_poll_interval = poll_interval, down_poll_interval
        self.tasks: dict[str, TaskTail] = {}
        self.status: StatusTail | None = None
        #: changes a `taskUpdates` follower may be behind before it is ended
        self.status_inbox_limit = INBOX_LIMIT * 10

    def offer(self, row: AgentLog) -> None:
        """Hand a row committed in this process to its task's tail, if one runs."""
        tail = self.tasks.get(row.task_id)
        if tail is not None:
            tail.offer(row)

    @contextlib.asynccontextmanager
    async def follow_task(self, task_id: str) -> AsyncIterator[Inbox[AgentLog]]:
        """An inbox of `task_id`'s events from its tail (started if none runs); the tail
        stops with its last follower. The follower replays from the database at once,
        while a new tail starts: when the tail is ready it nudges the inboxes it already
        has, so rows committed between their replay and its start are read, not missed."""
        tail = self.tasks.get(task_id)
        if tail is None or tail.ended:
            tail = self.tasks[task_id] = TaskTail(self, task_id)
            tail.runner = asyncio.create_task(tail.run(), name=f"tail-{task_id}")
        inbox: Inbox[AgentLog] = Inbox()
        tail.inboxes.add(inbox)
        try:
            yield inbox
        finally:
            tail.inboxes.discard(inbox)
            if not tail.inboxes and tail.runner is not None:
                if self.tasks.get(task_id) is tail:
                    del self.tasks[task_id]
                await _stop(tail.runner)

    @contextlib.asynccontextmanager
    async def follow_status(self) -> AsyncIterator[Inbox[dict[str, Any]]]:
        """An inbox of every status change committed after it was made (the status
        tail starts with the first follower and stops with the last)."""
        if self.status is None:
            self.status = StatusTail(self)
            self.status.runner = asyncio.create_task(self.status.run(), name="status-tail")
        status = self.status
        status.members += 1
        inbox: Inbox[dict[str, Any]] = Inbox(limit=self.status_inbox_limit)
        try:
            await status.add(inbox)
            yield inbox
        finally:
            status.inboxes.discard(inbox)
            status.members -= 1
            if not status.members and status.runner is not None:
                if self.status is status:
                    self.status = None
                await _stop(status.runner)


async def _stop(runner: asyncio.Task[None]) -> None:
    """Cancel a tail's `runner` and wait until it has unsubscribed."""
    runner.cancel()
    await asyncio.wait([runner])


__all__ = [
    "TASKS_CHANNEL",
    "StatusTail",
    "Tails",
    "TaskTail",
    "notice_seq",
    "task_channel",
    "wait_for_notice",
]
