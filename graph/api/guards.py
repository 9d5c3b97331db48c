"""What the mutations share: a place in the caller's queue, and the errors of a
mutation on one task (NOT_FOUND, CONFLICT)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import strawberry

from db.event_log import TaskClosedError, TaskNotFoundError
from graph.api.context import Info
from graph.errors import ConflictError, task_not_found


@contextlib.asynccontextmanager
async def queue_place(info: Info, *, held: bool = False, places: int = 1) -> AsyncIterator[None]:
    """Let the body queue `places` more tasks of the caller (a batch of n: n), or raise
    `RateLimitedError` (RATE_LIMITED, `retryAfter`, `limit`) when its waiting tasks and
    these would pass MAX_QUEUED_PER_PRINCIPAL: its PENDING generations, and its
    verifyPost calls in flight (`held`: counted until they return, queued or running;
    `graph.security.rate_limits.QueueCap`)."""
    services = info.context.services
    owner = info.context.principal.id

    async def queued() -> int:
        return await services.tasks.queued_count(owner)

    limit = services.settings.max_queued_per_principal
    async with services.rate_limiter.queue.place(owner, limit, queued, held=held, places=places):
        yield


@contextlib.asynccontextmanager
async def task_errors(task_id: strawberry.ID) -> AsyncIterator[None]:
    """NOT_FOUND for an unknown task and for another principal's task alike (ids leak
    nothing), CONFLICT for one in the wrong state."""
    try:
        yield
    except TaskNotFoundError:
        raise task_not_found(task_id, field="id") from None
    except TaskClosedError as exc:
        raise ConflictError(str(exc), field="id") from None
