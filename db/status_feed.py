"""`StatusFeed`: the task status changes committed after a start, read from the event log
by primary key, each once (`db.event_log.EventLog.follow_status` wakes it).

Imports: `db.engine`, `db.models` (plus SQLAlchemy and SQLModel).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, func, null
from sqlmodel import col, select

from db.engine import SessionFactory
from db.enums import EventKind
from db.models import AgentLog, Task


class StatusFeed:
    """The TASK_STATUS rows committed after `start()`, each once, as status notices.

    Rows are read by `agent_log.id`, the primary key: `WHERE id > floor ORDER BY id`, one
    index range scan over the rows written since the last read (all kinds, so the ids
    show holes), with the task's owner by primary key for the status rows. `floor` is
    the highest id below which every id was read or given up on; `seen` holds the ids
    above it that were read.

    Ids are taken at INSERT and become visible at COMMIT, so on PostgreSQL a later id can
    commit first. An id missing between read ones (a hole) is therefore waited for, for
    `hole_grace` seconds from when it was first noticed: reads go on starting below it
    until it commits (and is delivered) or the grace ends (a rolled-back insert or a
    sequence gap after a crash: it never will). An insert commits within milliseconds
    of taking its id, so the 10 s default is ample; a hole costs only re-reading what
    came after it. On SQLite writes are serial and ids commit in order. At its start
    the feed also reads the newest `lookback` ids: rows there are before its start,
    holes there may still commit after it.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        hole_grace: float = 10.0,
        lookback: int = 100,
        batch: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_factory = session_factory
        self.hole_grace, self.lookback, self.batch, self.clock = hole_grace, lookback, batch, clock
        self.floor = 0
        self.seen: set[int] = set()
        self._hole_since: float | None = None

    async def start(self) -> None:
        """Take the current end of the log as the start: later reads return only rows
        that were not visible now."""
        async with self.session_factory() as session:
            top = await session.scalar(select(func.max(AgentLog.id)))
        self.floor = max(0, (top or 0) - self.lookback)
        await self.read(until=top or 0)  # discarded: before the start

    async def read(self, *, until: int | None = None) -> list[dict[str, Any]]:
        """The notices `{"task_id", "seq", "status", "owner"}` of the status rows not
        read before, in id order (each task's in seq order), up to id `until` if given.
        `start()`'s read, up to the end it saw, is discarded; a row committed after it
        looked is left for the next read."""
        notices: list[dict[str, Any]] = []
        after = self.floor
        seen = set(self.seen)  # kept only if every batch is read: a failed read loses nothing
        while True:
            async with self.session_factory() as session:
                query = self._query(after, until)
                rows = (await session.exec(query)).all()  # type: ignore[call-overload]
            for row_id, task_id, seq, data, owner in rows:
                if row_id in seen:
                    continue
                seen.add(row_id)
                if data is not None:  # a TASK_STATUS row
                    notice = {"task_id": task_id, "seq": seq, "status": data["status"]}
                    notices.append(notice if owner is None else {**notice, "owner": owner})
            if len(rows) < self.batch:
                break
            after = rows[-1][0]
        self.seen = seen
        self._advance()
        return notices

    def _query(self, after: int, until: int | None) -> Any:
        is_status = col(AgentLog.kind) == EventKind.TASK_STATUS.value
        query = (
            select(
                col(AgentLog.id),
                col(AgentLog.task_id),
                col(AgentLog.seq),
                case((is_status, col(AgentLog.data)), else_=null()),
                col(Task.owner),
            )
            .outerjoin(Task, and_(is_status, col(Task.id) == col(AgentLog.task_id)))
            .where(col(AgentLog.id) > after)
            .order_by(col(AgentLog.id))
            .limit(self.batch)
        )
        return query if until is None else query.where(col(AgentLog.id) <= until)

    def _advance(self) -> None:
        """Raise `floor` over the read ids that follow it, and over a hole whose grace
        has ended."""
        now = self.clock()
        for row_id in sorted(self.seen):
            if row_id == self.floor + 1:
                self.floor, self._hole_since = row_id, None
            elif self._hole_since is None:
                self._hole_since = now  # a new hole below row_id: wait for it
                break
            elif now - self._hole_since >= self.hole_grace:
                self.floor, self._hole_since = row_id, None  # it will not commit now
            else:
                break
        self.seen = {i for i in self.seen if i > self.floor}


__all__ = ["StatusFeed"]
