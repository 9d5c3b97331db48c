"""Batches: several generations submitted together (`generatePosts`), all or nothing.

Every task of a batch, its TASK_QUEUED event and its DBOS workflow are written in ONE
transaction, as `TaskService` writes one task (`agents.runtime.tasks`): a batch is
stored whole or not at all. The tasks share a `batch_id`, a new id like a task's.

The tasks of a batch about the same paper (the same title and context, one per tone, say)
research it once: LangGraph's node cache serves the PaperResearcher's notes to the others
(`agents.teams.researcher`, `agents.runtime.node_cache`); nothing here needs to know.

Imports: `agents.runtime`, `agents.teams` and `db` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.runtime.idempotency import Claim
from agents.teams.state import initial_teams
from db import repository
from db.enums import EventKind, TaskKind, TaskStatus
from db.events import Event
from db.models import LOCAL_OWNER, PostRequest, Task, new_id

if TYPE_CHECKING:
    from agents.runtime.tasks import TaskService

#: Most generations in one batch (the original PostAssist API's five papers per call).
MAX_BATCH = 5


@dataclass(frozen=True)
class Batch:
    """A stored batch: its id and its tasks, in the order they were asked for."""

    id: str
    tasks: list[Task]


async def create_batch(
    service: TaskService,
    requests: Sequence[PostRequest],
    *,
    owner: str = LOCAL_OWNER,
    claim: Claim | None = None,
) -> Batch:
    """Store one PENDING generation of principal `owner` per request (1 to `MAX_BATCH`,
    else `ValueError`), in order, sharing a new `batch_id`, each with its queued
    workflow and a TASK_QUEUED event (`position`, `batch_id`, `batch_index`), in one
    transaction (with `claim`'s idempotency key naming them, when given: a concurrent
    submission that took the key first makes it raise `Replayed` or
    `IdempotencyConflictError`); then announce and publish them. Returns the `Batch`."""
    if not 1 <= len(requests) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} generations, not {len(requests)}")
    batch_id = new_id()
    tasks: list[Task] = []
    rows: list[Any] = []
    pending = repository.TaskFilter(status=TaskStatus.PENDING)
    async with service.session_factory() as session:
        for index, request in enumerate(requests):
            task = await repository.create_task(
                session=session, request=request, kind=TaskKind.GENERATE, teams=initial_teams(),
                owner=owner, links={"batch_id": batch_id}, commit=False,
            )  # fmt: skip
            # the service's own enqueue, in this session's transaction
            await service._enqueue(session, task.id, workflow_id=task.id)
            position = await repository.count_tasks(session=session, where=pending)
            data = {"position": position, "batch_id": batch_id, "batch_index": index}
            message = f"queued at position {position} (batch item {index + 1} of {len(requests)})"
            rows.append(await service.event_log.write(session, task.id, Event(
                EventKind.TASK_QUEUED, message, data=data
            )))  # fmt: skip
            tasks.append(task)
        if claim is not None:
            await claim.record(session, [task.id for task in tasks], batch_id=batch_id)
        await session.commit()
    for task, row in zip(tasks, rows, strict=True):
        await service.event_log.announce_enqueued(task.id)
        await service.event_log.publish(row, owner=owner)
    return Batch(batch_id, tasks)
