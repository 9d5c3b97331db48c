"""The event log: durable append, then broadcast; follow = subscribe, replay, then live.

Write path (`EventLog.append`): one transaction allocates the task's next `seq`
(`UPDATE task SET last_seq = last_seq + 1 ... RETURNING`, which takes the row's write
lock on PostgreSQL and the database write lock on SQLite, so concurrent appends for a
task serialise and `seq` has no gaps), inserts the `AgentLog` row and folds the event
into the task's snapshot. Only after the commit does it publish a compact notice
(`{"task_id", "seq", "kind"}`, well under PostgreSQL NOTIFY's 8000 bytes) on the
broadcast channel `task:<id>`, and status changes on `tasks`.

Read path (`EventLog.follow`): subscribe first, then replay rows with
`seq > after_seq` from the database, then wait for notices. A notice is only a
wake-up: the rows are always read from the database, so a notice the bus lost is
made up by the next one or by the poll that runs every `poll_interval` seconds.
The follower stops after the terminal TASK_STATUS event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from broadcaster import Broadcast
from sqlalchemy import update
from sqlmodel import col

from db import repository
from db.engine import SessionFactory
from db.models import TERMINAL_STATUSES, AgentLog, EventKind, Task, TaskStatus, utcnow

logger = logging.getLogger(__name__)

#: Channel that carries every task's status changes (for `taskUpdates`).
TASKS_CHANNEL = "tasks"
#: Longest string kept in an event's `data`; longer text lives in the task's columns.
MAX_DATA_STRING = 500
#: Longest `message` kept on an event.
MAX_MESSAGE = 1000
#: Task columns an event may set alongside itself (large results live here).
RESULT_FIELDS = frozenset(
    {
        "research_notes",
        "content",
        "hashtags",
        "verification_reports",
        "revisions",
        "error",
        "error_code",
    }
)
#: Agent/team statuses in the snapshot, as the seed API names them.
IDLE, WORKING, COMPLETED, ERROR = "IDLE", "WORKING", "COMPLETED", "ERROR"


class TaskNotFoundError(LookupError):
    """The task id names no task."""


class TaskClosedError(RuntimeError):
    """The task already reached a terminal status; no event may follow it."""


def task_channel(task_id: str) -> str:
    """Return the broadcast channel name of one task's events: `task:<id>`."""
    return f"task:{task_id}"


def is_terminal_event(event: AgentLog) -> bool:
    """True when `event` moved its task to COMPLETED, FAILED or CANCELLED."""
    # TaskStatus is a StrEnum: the stored string compares equal to its member.
    return (
        event.kind == EventKind.TASK_STATUS
        and (event.data or {}).get("status") in TERMINAL_STATUSES
    )


class EventLog:
    """Durable, gapless, followable per-task event log on a database plus a broadcast bus.

    `poll_interval` (seconds) bounds how long a follower can lag behind when the
    bus drops a notice (the bus is at-most-once; the database is the truth).
    """

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        broadcast: Broadcast,
        poll_interval: float = 5.0,
    ) -> None:
        self.session_factory = session_factory
        self.broadcast = broadcast
        self.poll_interval = poll_interval
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, task_id: str) -> asyncio.Lock:
        lock = self._locks.get(task_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[task_id] = lock
        return lock

    async def append(
        self,
        task_id: str,
        *,
        kind: EventKind,
        message: str = "",
        team: str | None = None,
        agent: str | None = None,
        data: Mapping[str, Any] | None = None,
        progress: float | None = None,
        status: TaskStatus | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> AgentLog:
        """Persist one event of `task_id`, fold it into the task's snapshot, then publish it.

        - `kind`: what happened; `status` is required for (and only for) TASK_STATUS.
        - `progress`: the task's progress after this event, 0..1 (kept when None).
        - `data`: small JSON; strings over `MAX_DATA_STRING` characters are cut.
        - `result`: task columns to set in the same transaction (see `RESULT_FIELDS`).

        Returns the stored row (with its `seq`). Raises `TaskNotFoundError`,
        `TaskClosedError` when the task is already terminal, and `ValueError` for a
        bad `kind`/`status` pair, a `progress` outside 0..1 or an unknown result field.
        Nothing is written when it raises. If the caller is cancelled, the append still
        completes (it is shielded) and the caller sees `CancelledError`.
        """
        # Shielded: a caller cancelled mid-append (cancelTask, shutdown) must not leave a
        # transaction half-done holding the write lock; the append finishes either way.
        return await asyncio.shield(
            self._append(
                task_id,
                kind=kind,
                message=message,
                team=team,
                agent=agent,
                data=data,
                progress=progress,
                status=status,
                result=result,
            )
        )

    async def _append(
        self,
        task_id: str,
        *,
        kind: EventKind,
        message: str,
        team: str | None,
        agent: str | None,
        data: Mapping[str, Any] | None,
        progress: float | None,
        status: TaskStatus | None,
        result: Mapping[str, Any] | None,
    ) -> AgentLog:
        if (kind == EventKind.TASK_STATUS) != (status is not None):
            raise ValueError("status is given with, and only with, kind=TASK_STATUS")
        if progress is not None and not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress must be within 0..1, got {progress}")
        unknown = set(result or {}) - RESULT_FIELDS
        if unknown:
            raise ValueError(f"unknown result fields: {sorted(unknown)}")
        payload = _compact(dict(data or {}))
        if status is not None:
            payload["status"] = status.value

        async with self._lock(task_id), self.session_factory() as session:
            bumped = await session.exec(  # type: ignore[call-overload]
                update(Task)
                .where(col(Task.id) == task_id)
                .where(col(Task.status).not_in([s.value for s in TERMINAL_STATUSES]))
                .values(last_seq=Task.last_seq + 1)
                .returning(Task.last_seq)
            )
            seq = bumped.scalar_one_or_none()
            if seq is None:
                await session.rollback()
                if await repository.get_task(session=session, task_id=task_id) is None:
                    raise TaskNotFoundError(task_id)
                raise TaskClosedError(f"task {task_id} is already finished")
            task = await session.get(Task, task_id, populate_existing=True)
            assert task is not None
            event = AgentLog(
                task_id=task_id,
                seq=seq,
                team=team,
                agent=agent,
                kind=kind.value,
                message=message[:MAX_MESSAGE],
                data=payload,
                progress=task.progress if progress is None else progress,
            )
            _fold(task, event)
            for name, value in (result or {}).items():
                setattr(task, name, value)
            session.add(event)
            session.add(task)
            await session.commit()

        await self._publish(task_channel(task_id), {"task_id": task_id, "seq": seq, "kind": kind})
        if status is not None:
            await self._publish(
                TASKS_CHANNEL, {"task_id": task_id, "seq": seq, "status": status.value}
            )
        return event

    async def _publish(self, channel: str, notice: dict[str, Any]) -> None:
        # The row is already durable; a bus failure costs followers at most one poll.
        try:
            await self.broadcast.publish(channel=channel, message=json.dumps(notice))
        except Exception:
            logger.exception("could not publish %s on %s", notice, channel)

    async def follow(self, task_id: str, *, after_seq: int = 0) -> AsyncIterator[AgentLog]:
        """Yield the events of `task_id` with `seq > after_seq`, in order and each once,
        first the stored ones, then live ones; stop after the terminal event.

        Raises `TaskNotFoundError` (before yielding anything) for an unknown task and
        `ValueError` for a negative `after_seq`.
        """
        if after_seq < 0:
            raise ValueError("after_seq must be >= 0")
        async with self.broadcast.subscribe(task_channel(task_id)) as subscriber:
            last = after_seq
            while True:
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
                    last = row.seq
                    yield row
                    if is_terminal_event(row):
                        return
                if rows:
                    continue  # there may be more stored rows; read again before waiting
                if TaskStatus(task.status).is_terminal and last >= task.last_seq:
                    return  # after_seq was at or past the terminal event
                try:
                    await asyncio.wait_for(subscriber.get(), timeout=self.poll_interval)
                except TimeoutError:
                    pass

    async def follow_status(self) -> AsyncIterator[dict[str, Any]]:
        """Yield `{"task_id", "seq", "status"}` for every task status change from now on.

        Live only (a dashboard re-reads `tasks` on connect); never ends by itself.
        """
        async with self.broadcast.subscribe(TASKS_CHANNEL) as subscriber:
            async for notice in subscriber:
                yield json.loads(notice.message)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_DATA_STRING:
            return value[: MAX_DATA_STRING - 1] + "…"
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cut(v) for v in value[:50]]
        return value

    return {k: cut(v) for k, v in data.items()}


def _fold(task: Task, event: AgentLog) -> None:
    """Apply `event` to `task`'s snapshot (status, progress, teams, usage)."""
    now = event.created_at
    task.updated_at = now
    task.last_seq = event.seq
    task.progress = event.progress
    teams = [dict(t, agents=[dict(a) for a in t.get("agents", [])]) for t in task.teams or []]
    kind = EventKind(event.kind)
    team = _entry(teams, event.team, agents=[]) if event.team else None
    agent = None
    if team is not None and event.agent and kind.name.startswith("AGENT_"):
        agent = _entry(team["agents"], event.agent)  # supervisors are not listed as agents

    if kind == EventKind.TASK_STATUS:
        status = TaskStatus(event.data["status"])
        task.status = status.value
        if status == TaskStatus.RUNNING and task.started_at is None:
            task.started_at = now
        if status.is_terminal:
            task.completed_at = now
            task.current_team = task.current_agent = None
            if status == TaskStatus.COMPLETED:
                task.progress = event.progress = 1.0
    elif kind == EventKind.TEAM_STARTED and team is not None:
        # Agents keep their status from an earlier round until they start again.
        team.update(status=WORKING, progress=0.0, started_at=now.isoformat(), completed_at=None)
        team["finished_in_round"] = []
        task.current_team, task.current_agent = event.team, None
    elif kind == EventKind.TEAM_FINISHED and team is not None:
        team.update(status=COMPLETED, progress=1.0, completed_at=now.isoformat())
        task.current_agent = None
    elif kind == EventKind.AGENT_STARTED and agent is not None:
        agent.update(status=WORKING, progress=0.0, activity=event.message, error=None)
        task.current_team, task.current_agent = event.team, event.agent
    elif kind == EventKind.AGENT_ACTIVITY and agent is not None:
        agent["activity"] = event.message
    elif kind == EventKind.AGENT_FINISHED and agent is not None:
        agent.update(status=COMPLETED, progress=1.0, activity=event.message)
        if team is not None and event.agent not in team.setdefault("finished_in_round", []):
            team["finished_in_round"].append(event.agent)
    elif kind == EventKind.AGENT_ERROR and agent is not None:
        agent.update(status=ERROR, error=event.message, activity=None)
        if team is not None:
            team["status"] = ERROR
    elif kind == EventKind.LLM_USAGE:
        task.llm_calls += 1
        task.input_tokens += int(event.data.get("input_tokens") or 0)
        task.output_tokens += int(event.data.get("output_tokens") or 0)
        task.total_tokens += int(event.data.get("total_tokens") or 0)

    if agent is not None:
        agent["updated_at"] = now.isoformat()
    if team is not None and team["agents"] and team["status"] == WORKING:
        done = len(team.get("finished_in_round", []))
        team["progress"] = round(min(1.0, done / len(team["agents"])), 4)
    task.teams = teams


def _entry(entries: list[dict[str, Any]], name: str, **extra: Any) -> dict[str, Any]:
    """Find the team/agent entry `name`, creating an IDLE one if the snapshot lacks it."""
    for entry in entries:
        if entry["name"] == name:
            return entry
    entry = {"name": name, "status": IDLE, "progress": 0.0, **extra}
    entries.append(entry)
    return entry


__all__ = [
    "TASKS_CHANNEL",
    "EventLog",
    "TaskClosedError",
    "TaskNotFoundError",
    "is_terminal_event",
    "task_channel",
    "utcnow",
]
