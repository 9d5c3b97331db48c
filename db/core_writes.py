"""The event log's hot write path in SQLAlchemy Core: the task's snapshot and its new
rows written without the ORM's unit of work (`db.event_log.EventLog.append_many`).

The ORM path (`EventLog.write_many`) read the task row a second time after bumping
`last_seq` (`Session.get`) and flushed the rows and the task through the unit of work:
about 3.8 ms of CPU per append of three events on SQLite, most of the event log's share
of a run. Here one `UPDATE ... RETURNING` bumps `last_seq` and returns the whole row, the
events are folded into a detached `Task`, and one `UPDATE` of the changed columns and one
executemany `INSERT` write the result, in the caller's transaction.

Imports: `db.events`, `db.models`, `db.snapshot`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, or_, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.events import Event
from db.models import AgentLog, Task
from db.snapshot import fold

_TASK = Task.__table__  # type: ignore[attr-defined]
_LOG = AgentLog.__table__  # type: ignore[attr-defined]
_LOG_COLUMNS = [c.name for c in _LOG.columns if c.name != "id"]


def fold_events(task: Task, events: list[Event], *, last_seq: int) -> list[AgentLog]:
    """The rows of `events`, numbered up to `last_seq` (the task's bumped `last_seq`),
    each folded into `task`'s snapshot with its result's columns applied, in order."""
    rows = []
    for seq, event in enumerate(events, start=last_seq - len(events) + 1):
        row = event.row(task.id, seq, progress=task.progress)
        fold(task, row)
        if event.result is not None:
            event.result.apply(task)
        rows.append(row)
    return rows


async def append_rows(
    session: AsyncSession,
    task_id: str,
    events: list[Event],
    *,
    closed: list[str],
    workflow_id: str | None = None,
) -> tuple[list[AgentLog], Task] | None:
    """Write `events` of `task_id` in `session`'s transaction (not committed): the rows
    and the task as it is after them (detached: not in the session), or None when no
    task `task_id` has a status outside `closed` (and, with `workflow_id`, that workflow
    or none recorded as its current one): nothing written. The caller checked the
    events (`Event.check`) and holds the task's append lock."""
    if not events:
        raise ValueError("append_rows needs at least one event")
    connection = await session.connection()  # Core on the connection: no ORM execute path
    current = _TASK.c.workflow_id
    ours = true() if workflow_id is None else or_(current.is_(None), current == workflow_id)
    bumped = await connection.execute(
        update(_TASK)
        .where(_TASK.c.id == task_id, _TASK.c.status.not_in(closed), ours)
        .values(last_seq=_TASK.c.last_seq + len(events))
        .returning(*_TASK.columns)
    )
    found = bumped.mappings().one_or_none()
    if found is None:
        return None
    before: dict[str, Any] = dict(found)
    task = Task(**before)
    rows = fold_events(task, events, last_seq=before["last_seq"])
    changed = {
        name: value
        for name in before
        if name != "id" and (value := getattr(task, name)) != before[name]
    }
    if changed:
        await connection.execute(update(_TASK).where(_TASK.c.id == task_id).values(**changed))
    await connection.execute(
        insert(_LOG), [{name: getattr(row, name) for name in _LOG_COLUMNS} for row in rows]
    )
    return rows, task


__all__ = ["append_rows", "fold_events"]
