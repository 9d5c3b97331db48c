"""The root `Subscription`: a task's events, and every task's status changes (both read
from the database by `db.event_log.EventLog`, the bus only waking them, so they work
through a bus outage)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from db.drafts import DraftDelta, follow_with_drafts
from db.event_log import TaskNotFoundError
from graph.api.context import Info
from graph.api.types import Task, TaskEvent, TaskStatus
from graph.errors import UserInputError, task_not_found


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A task's events with seq > afterSeq: stored ones, then live ones; "
        "completes after the terminal event. Reconnect with the last seq seen. With "
        "includeDrafts, also the post as LinkedInCreator writes it: DRAFT_DELTA events "
        "(seq null, never stored, lost if missed; data {text, draft, index, replace}: "
        "append text to the draft, or start it afresh with it when replace is true)."
    )
    async def task_progress(
        self,
        info: Info,
        task_id: strawberry.ID,
        after_seq: int = 0,
        include_drafts: bool = False,
    ) -> AsyncGenerator[TaskEvent, None]:
        if after_seq < 0:
            raise UserInputError("afterSeq must be >= 0", field="afterSeq")
        if await info.context.visible_task(str(task_id)) is None:
            raise task_not_found(task_id, field="taskId")
        event_log = info.context.services.event_log
        try:
            if include_drafts:
                async for item in follow_with_drafts(event_log, str(task_id), after_seq=after_seq):
                    if isinstance(item, DraftDelta):
                        yield TaskEvent.from_delta(item)
                    else:
                        yield TaskEvent.from_model(item)
                return
            async for row in event_log.follow(str(task_id), after_seq=after_seq):
                yield TaskEvent.from_model(row)
        except TaskNotFoundError:
            raise task_not_found(task_id, field="taskId") from None

    @strawberry.subscription(
        description="Status changes of the caller's tasks (an admin's: every task) from now "
        "on, optionally of one status only."
    )
    async def task_updates(
        self, info: Info, status: TaskStatus | None = None
    ) -> AsyncGenerator[Task, None]:
        principal = info.context.principal
        async for notice in info.context.services.event_log.follow_status():
            if status is not None and notice["status"] != status.value:
                continue
            if "owner" in notice and not principal.can_see(str(notice["owner"])):
                continue  # another principal's task: skipped without a read
            row = await info.context.visible_task(notice["task_id"])
            if row is not None:
                yield _as_of_change(Task.from_model(row), notice)


def _as_of_change(task: Task, notice: dict[str, Any]) -> Task:
    """`task` (read now) with the `status` of the change `notice` reports: a change read
    late (after a bus outage) may be older than the task's current status, and each
    change is sent once, as the change it was (RUNNING, then COMPLETED; not COMPLETED
    twice)."""
    task.status = TaskStatus(notice["status"])
    return task
