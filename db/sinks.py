"""Event sinks: what else an event's transaction writes. `EventLog` hands each sink the
lifecycle rows (`LIFECYCLE_KINDS`: a task queued, a status change) it is about to
commit, with the task as it is after them, before the commit, so a sink's rows (a
webhook delivery and its queued workflow, a broker outbox row) commit with the event
or not at all. `db` defines the seam; the layers above
install the sinks (`EventLog.sinks`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from db.enums import EventKind
from db.models import AgentLog, Task

#: The event kinds sinks see: the task's creation (TASK_QUEUED) and its status changes.
LIFECYCLE_KINDS = frozenset({EventKind.TASK_QUEUED, EventKind.TASK_STATUS})


class EventSink(Protocol):
    """Writes what a committed status change must cause, in the event's transaction."""

    async def write(self, session: AsyncSession, task: Task, rows: Sequence[AgentLog]) -> None:
        """Add rows for the lifecycle events `rows` (in `seq` order, at least one) of
        `task` to `session`'s transaction; never commit. Raising rolls the event back:
        raise only when the event must not be written without these rows."""
        ...


async def write_sinks(
    sinks: Sequence[EventSink], session: AsyncSession, task: Task, rows: Sequence[AgentLog]
) -> None:
    """Run every sink on the lifecycle rows among `rows` (none: nothing runs, no cost
    for the agent events that make up most of a run)."""
    if not sinks:
        return
    status_rows = [row for row in rows if row.kind in LIFECYCLE_KINDS]
    if status_rows:
        for sink in sinks:
            await sink.write(session, task, status_rows)


__all__ = ["LIFECYCLE_KINDS", "EventSink", "write_sinks"]
