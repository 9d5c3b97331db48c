"""Worker heartbeats: who is alive, and the atomic claim of a dead worker's tasks."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Worker, utcnow


async def beat(*, session: AsyncSession, worker_id: str, at: datetime | None = None) -> None:
    """Record that `worker_id` is alive now (or at `at`); insert its row on first beat."""
    at = at or utcnow()
    result = await session.exec(  # type: ignore[call-overload]
        update(Worker).where(col(Worker.id) == worker_id).values(heartbeat_at=at)
    )
    if result.rowcount == 0:
        session.add(Worker(id=worker_id, started_at=at, heartbeat_at=at))
    await session.commit()


async def stale_workers(*, session: AsyncSession, dead_after: float, exclude: str) -> list[str]:
    """Ids of workers other than `exclude` whose last heartbeat is older than
    `dead_after` seconds."""
    cutoff = utcnow() - timedelta(seconds=dead_after)
    rows = await session.exec(  # type: ignore[call-overload]
        select(Worker.id).where(col(Worker.heartbeat_at) < cutoff, col(Worker.id) != exclude)
    )
    return list(rows.scalars().all())


async def claim_dead(*, session: AsyncSession, worker_id: str, dead_after: float) -> bool:
    """Atomically delete the row of `worker_id` if it is still stale; True when this
    caller won the claim (only one claimer can: the DELETE takes the row)."""
    cutoff = utcnow() - timedelta(seconds=dead_after)
    result = await session.exec(  # type: ignore[call-overload]
        delete(Worker).where(col(Worker.id) == worker_id, col(Worker.heartbeat_at) < cutoff)
    )
    await session.commit()
    return result.rowcount == 1


async def retire(*, session: AsyncSession, worker_id: str) -> None:
    """Mark `worker_id` as gone (heartbeat at the epoch) so that another worker takes
    over what it leaves behind at once, instead of after `dead_after`."""
    await beat(
        session=session, worker_id=worker_id, at=datetime.fromtimestamp(0, tz=utcnow().tzinfo)
    )
