"""The event log: durable append, then broadcast; follow = subscribe, replay, then live.

Write path (`EventLog.append`): one transaction allocates the task's next `seq`
(`UPDATE task SET last_seq = last_seq + 1 ... RETURNING`, which takes the row's write
lock on PostgreSQL and the database write lock on SQLite, so concurrent appends for a
task serialise and `seq` has no gaps), inserts the `AgentLog` row and folds the event
into the task's snapshot. Only after the commit does it publish a compact notice
(`{"task_id", "seq", "kind"}`, well under PostgreSQL NOTIFY's 8000 bytes) on the
broadcast channel `task:<id>`, and status changes on `tasks`.

Read path (`EventLog.follow`): join the task's shared tail (`db.tails.TaskTail`: one
subscription and one reader per task per process), replay rows with `seq > after_seq`
from the database, then take the live rows the tail hands out. A row committed in this
process reaches the tail as committed (`publish`), with no read; a notice from another
process makes the tail read the rows it names. A notice is only a wake-up: a lost one
is made up by the next one, by the bus's wake-up when it reports an outage, or (on a
bus that cannot report them) by the poll every `poll_interval` seconds. The follower
stops after the terminal TASK_STATUS event.

Status changes (`EventLog.follow_status`, for `taskUpdates`) are read from the database
once per process (`db.tails.StatusTail`): the TASK_STATUS rows committed after the
follower started, found by `agent_log.id` (the primary key, so each read is one index
range scan over the rows written since the last read, never a scan of the table or of
the tasks), with the `tasks` channel only as a wake-up (`StatusFeed` says how ids that
commit out of order are waited for).

While the bus is down (`db.bus_state.BusState`), the tails read the database every
`down_poll_interval` seconds instead (the bus wakes them when it goes down and when it
is back), so an outage loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from broadcaster import Broadcast
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db import metrics, repository
from db.bus import bus_state
from db.bus_state import BusDownError
from db.core_writes import append_rows, fold_events
from db.engine import SessionFactory
from db.enums import TERMINAL_STATUSES, EventKind, TaskStatus
from db.events import Event, TaskResult, is_terminal_event
from db.inbox import FollowerLaggedError, Inbox
from db.models import AgentLog, Task
from db.sinks import EventSink, write_sinks
from db.tails import TASKS_CHANNEL, Tails, task_channel

logger = logging.getLogger(__name__)

#: Channel that says a task was put in the queue (workers poll the queue at once).
QUEUE_CHANNEL = "queue"
#: Seconds between a follower's database reads while the bus is down (the normal poll
#: interval when that is shorter): an outage delays a live event by about this much,
#: and costs one indexed read per followed task (its tail) per interval.
DOWN_POLL_SECONDS = 1.0


class TaskNotFoundError(LookupError):
    """The task id names no task."""


class TaskClosedError(RuntimeError):
    """The task already reached a terminal status; no event may follow it."""


class TaskStateConflictError(TaskClosedError):
    """The task is not in the state the change needs (a review decision for a revision
    that no longer awaits review, a pause of a task that already stopped): nothing was
    written. A `TaskClosedError`, so every caller that maps one to CONFLICT maps this."""


class EventLog:
    """Durable, gapless, followable per-task event log on a database plus a broadcast bus.

    `poll_interval` (seconds) bounds how long a follower can lag behind when the
    bus drops a notice (the bus is at-most-once; the database is the truth);
    `down_poll_interval` (seconds) is the poll while the bus reports it is down.
    `sinks` write what a status change causes in its transaction (`db.sinks`).
    """

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        broadcast: Broadcast,
        poll_interval: float = 5.0,
        down_poll_interval: float = DOWN_POLL_SECONDS,
        sinks: Sequence[EventSink] = (),
    ) -> None:
        self.session_factory = session_factory
        #: Written in every event's transaction (`db.sinks`); add to it before use.
        self.sinks: list[EventSink] = list(sinks)
        self.broadcast = broadcast
        self.poll_interval = poll_interval
        self.down_poll_interval = down_poll_interval
        self.tails = Tails(
            session_factory,
            broadcast,
            poll_interval=poll_interval,
            down_poll_interval=down_poll_interval,
        )
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, task_id: str) -> asyncio.Lock:
        lock = self._locks.get(task_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[task_id] = lock
        return lock

    async def append(self, task_id: str, event: Event) -> AgentLog:
        """Persist `event` of `task_id`, fold it into the task's snapshot, then publish it.

        Returns the stored row (with its `seq`). Raises `TaskNotFoundError`,
        `TaskClosedError` when the task is already terminal, and `ValueError` for an
        invalid event (`Event.check`). Nothing is written when it raises. If the caller
        is cancelled, the append still completes (it is shielded) and the caller sees
        `CancelledError`.
        """
        # Shielded: a caller cancelled mid-append (cancelTask, shutdown) must not leave a
        # transaction half-done holding the write lock; the append finishes either way.
        return await asyncio.shield(self._append(task_id, event))

    async def _append(self, task_id: str, event: Event) -> AgentLog:
        return (await self._append_many(task_id, [event]))[0][0]

    async def append_many(self, task_id: str, events: list[Event]) -> list[AgentLog]:
        """Persist `events` of `task_id` in order, in ONE transaction (all or none), then
        publish them; the rows in order. Raises as `append` (nothing written)."""
        return (await asyncio.shield(self._append_many(task_id, events)))[0]

    async def append_reading(
        self,
        task_id: str,
        events: list[Event],
        *,
        refuse: frozenset[TaskStatus] = frozenset(),
        workflow_id: str | None = None,
    ) -> tuple[list[AgentLog], Task]:
        """`append_many` that also returns the task as it is after the events (detached;
        a run reads its `pause_requested` from it at no extra cost). A task in one of the
        non-terminal statuses `refuse`, or (with `workflow_id`) whose current workflow is
        another, is left alone: `TaskStateConflictError` (a run must not start on a task
        that was paused or awaits review meanwhile, or that a newer workflow runs)."""
        return await asyncio.shield(
            self._append_many(task_id, events, refuse=refuse, workflow_id=workflow_id)
        )

    async def _append_many(
        self,
        task_id: str,
        events: list[Event],
        *,
        refuse: frozenset[TaskStatus] = frozenset(),
        workflow_id: str | None = None,
    ) -> tuple[list[AgentLog], Task | None]:
        if not events:
            return [], None
        _check(events)
        closed = [s.value for s in TERMINAL_STATUSES | refuse]
        async with self._lock(task_id), self.session_factory() as session:
            written = await append_rows(
                session, task_id, events, closed=closed, workflow_id=workflow_id
            )
            if written is None:
                await self._refuse(session, task_id)
            rows, task = written
            await write_sinks(self.sinks, session, task, rows)
            await session.commit()
        for row in rows:
            await self.publish(row, owner=task.owner)
        return rows, task

    async def write(
        self,
        session: AsyncSession,
        task_id: str,
        event: Event,
        *,
        reopen: bool = False,
        require: Mapping[str, Any] | None = None,
    ) -> AgentLog:
        """Add `event` to `session`'s transaction without committing or publishing it
        (the caller commits, then calls `publish`). With `reopen`, the event may follow
        a FAILED status (a retry). `require` maps `Task` columns to the values they must
        have (`{"status": "AWAITING_REVIEW", "revisions": 2}`), checked in the same
        UPDATE that takes the `seq`, so two callers cannot both pass: otherwise
        `TaskStateConflictError`. Raises as `append`; on a raise the caller rolls back.
        """
        rows = await self.write_many(session, task_id, [event], reopen=reopen, require=require)
        return rows[0]

    async def write_many(
        self,
        session: AsyncSession,
        task_id: str,
        events: list[Event],
        *,
        reopen: bool = False,
        require: Mapping[str, Any] | None = None,
    ) -> list[AgentLog]:
        """`write` for several events: their `seq`s are taken with one UPDATE and the
        task is read once. Raises `ValueError` when an event follows a terminal one."""
        written = await self._write_many(session, task_id, events, reopen=reopen, require=require)
        return written[0]

    async def _write_many(
        self,
        session: AsyncSession,
        task_id: str,
        events: list[Event],
        *,
        reopen: bool = False,
        require: Mapping[str, Any] | None = None,
    ) -> tuple[list[AgentLog], Task]:
        _check(events)
        closed = [s.value for s in TERMINAL_STATUSES if not (reopen and s == TaskStatus.FAILED)]
        conditions = [col(getattr(Task, name)) == value for name, value in (require or {}).items()]
        bumped = await session.exec(  # type: ignore[call-overload]
            update(Task)
            .where(col(Task.id) == task_id)
            .where(col(Task.status).not_in(closed), *conditions)
            .values(last_seq=Task.last_seq + len(events))
            .returning(Task.last_seq)
        )
        last = bumped.scalar_one_or_none()
        if last is None:
            await self._refuse(session, task_id)
        task = await session.get(Task, task_id, populate_existing=True)
        assert task is not None
        rows = fold_events(task, events, last_seq=last)
        session.add_all([*rows, task])
        await write_sinks(self.sinks, session, task, rows)
        return rows, task

    @staticmethod
    async def _refuse(session: AsyncSession, task_id: str) -> NoReturn:
        """Roll back and raise `TaskNotFoundError`, `TaskClosedError` (the task is
        terminal) or `TaskStateConflictError` (it is not in the state the write
        required) for a task whose `last_seq` could not be bumped."""
        await session.rollback()
        task = await repository.get_task(session=session, task_id=task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        if TaskStatus(task.status).is_terminal:
            raise TaskClosedError(f"task {task_id} is already finished")
        raise TaskStateConflictError(f"task {task_id} is {task.status}: it changed meanwhile")

    async def reopen(
        self, session: AsyncSession, task_id: str, *, workflow_id: str | None = None
    ) -> AgentLog | None:
        """Move a FAILED task back to PENDING for a retry, in `session`'s transaction,
        recording `workflow_id` (the retry's workflow) as its current one; None (nothing
        written) when the task is missing or not FAILED."""
        task = await repository.get_task(session=session, task_id=task_id)
        if task is None or task.status != TaskStatus.FAILED:
            return None
        event = Event.task_status(
            TaskStatus.PENDING,
            "retry requested",
            data={"retry": True},
            result=TaskResult(workflow_id=workflow_id) if workflow_id else None,
        )
        return await self.write(session, task_id, event, reopen=True)

    async def publish(self, row: AgentLog, *, owner: str | None = None) -> None:
        """Publish the notices of a committed event: the row itself to this process's
        tail of the task (`db.tails`), then on `task:<id>`, and on `tasks` for a status
        change (with the task's `owner`, read here unless given, so a follower of its
        own tasks skips the others' without reading them). Nothing goes on the bus
        while it is down: followers read the database then."""
        self.tails.offer(row)
        metrics.count_committed(row)
        if not bus_state(self.broadcast).up:
            return
        notice = {"task_id": row.task_id, "seq": row.seq, "kind": row.kind}
        await self._publish(task_channel(row.task_id), notice)
        if row.kind == EventKind.TASK_STATUS:
            status = {"task_id": row.task_id, "seq": row.seq, "status": row.data["status"]}
            try:
                if owner is None:
                    async with self.session_factory() as session:
                        owner = await session.scalar(
                            select(Task.owner).where(col(Task.id) == row.task_id)
                        )
                status["owner"] = owner
            except Exception:  # the notice still goes; followers read the task instead
                logger.exception("could not read the owner of task %s", row.task_id)
            await self._publish(TASKS_CHANNEL, status)

    async def announce_enqueued(self, task_id: str) -> None:
        """Tell the workers that `task_id` was committed to the queue (on `queue`), so a
        worker with a free slot polls the queue now rather than at its next interval.
        Lost while the bus is down: the workers' own polls find the task then."""
        if bus_state(self.broadcast).up:
            await self._publish(QUEUE_CHANNEL, {"task_id": task_id})

    async def _publish(self, channel: str, notice: dict[str, Any]) -> None:
        # The row is already durable; a bus failure costs followers at most one poll.
        try:
            await self.broadcast.publish(channel=channel, message=json.dumps(notice))
            metrics.count_published(channel)
        except BusDownError as exc:  # the bus logs its outages itself
            logger.debug("not published %s on %s: %s", notice, channel, exc)
        except Exception:
            logger.exception("could not publish %s on %s", notice, channel)

    async def follow(self, task_id: str, *, after_seq: int = 0) -> AsyncIterator[AgentLog]:
        """Yield the events of `task_id` with `seq > after_seq`, in order and each once,
        first the stored ones, then live ones; stop after the terminal event.

        Live rows come from the task's shared tail (`db.tails`, one reader per task per
        process); a gap in them or an overflowed inbox makes this follower read the
        database itself. Raises `TaskNotFoundError` (before yielding anything) for an
        unknown task and `ValueError` for a negative `after_seq`.
        """
        if after_seq < 0:
            raise ValueError("after_seq must be >= 0")
        position = _Position(last=after_seq)
        while not position.done:
            async with self.tails.follow_task(task_id) as inbox:
                async for row in self._follow_tail(task_id, inbox, position):
                    yield row

    async def _follow_tail(
        self, task_id: str, inbox: Inbox[AgentLog], position: _Position
    ) -> AsyncIterator[AgentLog]:
        """`follow` on one tail: from `position.last` until the terminal event (then
        `position.done`), or until the tail ended while the task goes on (a
        retried task after the FAILED its tail ended at: `follow` joins a new tail)."""
        last, read = position.last, True
        while True:
            if read:
                async with self.session_factory() as session:
                    task = await repository.get_task(session=session, task_id=task_id)
                    if task is None:
                        raise TaskNotFoundError(task_id)
                    rows = await repository.list_agent_logs(
                        session=session, task_id=task_id, after_seq=last, limit=500
                    )
                for row in rows:
                    if row.seq <= last:
                        continue
                    last = position.last = row.seq
                    yield row
                    if is_terminal_event(row):
                        position.done = True
                        return
                if rows:
                    continue  # there may be more stored rows; read again before waiting
                if TaskStatus(task.status).is_terminal and last >= task.last_seq:
                    position.done = True
                    return  # after_seq was at or past the terminal event
                if inbox.ended:
                    return  # its tail ended at an event before this read: a new tail
                read = False
            row = await inbox.get()
            if row is None or row.seq > last + 1:
                read = True  # the tail ended, or this follower fell behind it
            elif row.seq == last + 1:
                last = position.last = row.seq
                yield row
                if is_terminal_event(row):
                    position.done = True
                    return

    async def follow_status(self) -> AsyncIterator[dict[str, Any]]:
        """Yield `{"task_id", "seq", "status", "owner"}` for every task status change
        committed from now on, each once, each task's in order (`owner` is missing only
        for a task that no longer exists). Never ends by itself; raises
        `FollowerLaggedError` when the caller stops taking them (`db.tails`).

        The changes are read from the database once per process for all followers
        (`db.tails.StatusTail`, a `StatusFeed`), woken by the `tasks` channel, and on
        the timers of `db.tails.wait_for_notice`: an outage loses nothing.
        """
        async with self.tails.follow_status() as inbox:
            while True:
                notice = await inbox.get()
                if notice is None:
                    raise FollowerLaggedError("taskUpdates fell too far behind; subscribe again")
                yield notice


@dataclass
class _Position:
    """Where a follower is: the last `seq` it yielded, and whether it has ended."""

    last: int
    done: bool = False


def _check(events: list[Event]) -> None:
    """Raise `ValueError` for an invalid event (`Event.check`) or one after a terminal."""
    for event in events:
        event.check()
    if any(event.is_terminal for event in events[:-1]):
        raise ValueError("no event may follow a terminal event")


__all__ = [
    "QUEUE_CHANNEL",
    "TASKS_CHANNEL",
    "EventLog",
    "FollowerLaggedError",
    "TaskClosedError",
    "TaskNotFoundError",
    "TaskStateConflictError",
    "task_channel",
]
