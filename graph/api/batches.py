"""Batches in the schema: `generatePosts` (1-5 generations in one call, validated all or
nothing, stored in one transaction) and the `batchProgress` subscription (each task's
status changes until every task of the batch is terminal). `tasks(batchId:)` lists a
batch (`graph.api.queries`). The root types compose these classes (`graph.api.schema`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from agents.runtime.batches import MAX_BATCH, create_batch
from db.enums import EventKind
from db.enums import TaskStatus as TaskStatusValue
from db.event_log import TaskNotFoundError
from db.models import AgentLog, PostRequest
from db.models import Task as TaskRow
from graph.api.context import Info
from graph.api.guards import queue_place
from graph.api.idempotency import KEY_HELP, IdempotencyKeyArgument, Idempotent, claim_of
from graph.api.inputs import GeneratePostInput
from graph.api.types import Task, TaskStatus
from graph.api.webhooks import check_callbacks
from graph.errors import NotFoundError, UserInputError
from graph.security.rate_limits import RateLimited


def validated_batch(inputs: list[GeneratePostInput]) -> list[PostRequest]:
    """Each input's validated request, in order; or `UserInputError` (BAD_USER_INPUT)
    when there are not 1-`MAX_BATCH` inputs (`extensions.field` = "inputs") or any input
    is invalid: `extensions.field` names the first bad one with its index
    (`inputs[3].paperTitle`) and `extensions.fields` maps every bad field of every input
    to its message. Nothing is stored for a batch with one bad input."""
    if not 1 <= len(inputs) <= MAX_BATCH:
        raise UserInputError(
            f"inputs: a batch holds 1 to {MAX_BATCH} inputs, not {len(inputs)}", field="inputs"
        )
    requests: list[PostRequest] = []
    fields: dict[str, str] = {}
    for index, item in enumerate(inputs):
        try:
            requests.append(item.to_request())
        except UserInputError as exc:
            details = exc.extensions or {}
            for name, message in (details.get("fields") or {details["field"]: exc.message}).items():
                fields[f"inputs[{index}].{name}"] = f"inputs[{index}].{message}"
    if fields:
        field = next(iter(fields))
        raise UserInputError(fields[field], field=field, fields=fields)
    return requests


def _many(tasks: list[TaskRow]) -> list[Task]:
    return [Task.from_model(row) for row in tasks]


@strawberry.type
class BatchMutation:
    @strawberry.mutation(
        description=f"Start 1-{MAX_BATCH} generations at once, all or none (an invalid "
        "input stores nothing; the error's extensions.field names it, e.g. "
        "inputs[3].paperTitle); returns the PENDING tasks in input order, sharing a "
        "batchId. Inputs about the same paper (same title and context) research it once. "
        + KEY_HELP,
        extensions=[
            RateLimited(),
            Idempotent("generatePosts", lambda kwargs: validated_batch(kwargs["inputs"]), _many),
        ],
    )
    async def generate_posts(
        self,
        info: Info,
        inputs: list[GeneratePostInput],
        idempotency_key: IdempotencyKeyArgument = None,
    ) -> list[Task]:
        requests = validated_batch(inputs)
        await check_callbacks(info, requests, prefix="inputs")
        owner = info.context.principal.id
        claim = claim_of(info, "generatePosts", requests, idempotency_key)
        async with queue_place(info, places=len(requests)):
            batch = await create_batch(
                info.context.services.tasks, requests, owner=owner, claim=claim
            )
        return [Task.from_model(row) for row in batch.tasks]


@strawberry.type
class BatchSubscription:
    @strawberry.subscription(
        description="The status of each task of a batch: first every task as it is now, "
        "then each status change as it happens (the task read then, with the status of "
        "the change); completes once every task is terminal."
    )
    async def batch_progress(
        self, info: Info, batch_id: strawberry.ID
    ) -> AsyncGenerator[Task, None]:
        services, principal = info.context.services, info.context.principal
        page = await services.tasks.list_tasks(principal, limit=MAX_BATCH, batch_id=str(batch_id))
        if not page.items:  # an unknown batch and another principal's read the same
            raise NotFoundError(f"no batch with id {batch_id}", field="batchId")
        rows = sorted(page.items, key=lambda row: (row.created_at, row.id))
        for row in rows:
            yield Task.from_model(row)
        changes: asyncio.Queue[AgentLog | None] = asyncio.Queue()
        open_ = [row for row in rows if not TaskStatusValue(row.status).is_terminal]
        followers = [
            asyncio.create_task(_follow_status(services, row.id, row.last_seq, changes))
            for row in open_
        ]
        try:
            running = len(followers)
            while running:
                change = await changes.get()
                if change is None:
                    running -= 1
                    continue
                task = await info.context.visible_task(change.task_id)
                if task is not None:
                    yield _with_status(Task.from_model(task), change)
            for follower in followers:  # a follower that failed (a database error) ended
                if (exc := follower.exception()) is not None:
                    raise exc
        finally:
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)


async def _follow_status(
    services: Any, task_id: str, after_seq: int, changes: asyncio.Queue[AgentLog | None]
) -> None:
    """Put each TASK_STATUS event of `task_id` after `after_seq` on `changes`, then None
    once its terminal event passed (`EventLog.follow`: stored rows first, then live ones,
    from the database when the bus lags or is down)."""
    try:
        async for row in services.event_log.follow(task_id, after_seq=after_seq):
            if row.kind == EventKind.TASK_STATUS:
                await changes.put(row)
    except TaskNotFoundError:
        pass  # deleted meanwhile: nothing more will change
    finally:
        await changes.put(None)


def _with_status(task: Task, change: AgentLog) -> Task:
    """`task` (read now) with the status of `change`: each change is sent once, as the
    change it was (RUNNING, then COMPLETED; not COMPLETED twice)."""
    task.status = TaskStatus(change.data["status"])
    return task
