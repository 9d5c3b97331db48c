"""People in the loop, on the task service: pause and resume, review decisions, and
follow-up revisions. Any replica may call these; the worker that runs a task learns of
them from the database (a pause request, the answer a run continues with:
`Task.pending_answer`) and the workflow they enqueue (a resume, a REVISE), never from
memory.

Every change is written with `EventLog.write_many(require=...)`: the status (and, for a
review, the revision) it answers is checked in the same UPDATE that takes the event's
`seq`, so of two concurrent answers exactly one is written and the other is
`TaskStateConflictError` (CONFLICT), and a stale answer changes nothing. An answer that
runs the graph again enqueues its DBOS workflow in the same transaction as its events.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbos import EnqueueOptions
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.checks.rules import hard_violations, hashtags_in
from agents.runtime.execution import QUEUE_NAME
from agents.runtime.outcomes import completed_event
from agents.runtime.task_reads import TaskReads, Viewer
from db import VERSION, repository
from db.enums import EventKind, FailureCode, ReviewDecision, TaskKind, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskStateConflictError
from db.events import Event, TaskResult
from db.models import AgentLog, Task

#: Lines of context around each change in the diff of an edited post (REVIEW_DECISION).
DIFF_CONTEXT = 1


@dataclass(frozen=True)
class ReviewInputError(ValueError):
    """A review answer the task cannot take: `field` names the argument (`content`,
    `feedback`), `check` the hard limit an edited post breaks
    (`agents.checks.rules.HARD_CHECKS`; None for a missing argument)."""

    field: str
    message: str
    check: str | None = None

    def __str__(self) -> str:
        return self.message


def _conflict(task: Task, wanted: str) -> TaskStateConflictError:
    return TaskStateConflictError(f"task {task.id} is {task.status}; {wanted}")


def _required_text(value: str | None, field: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ReviewInputError(field, f"{field}: {what}")
    return text


def _workflow_id(task_id: str, purpose: str) -> str:
    """A new DBOS workflow id for `task_id` (`<task id>:<purpose>-<random>`): DBOS takes
    a workflow id as an idempotency key, so every run that is enqueued needs its own."""
    return f"{task_id}:{purpose}-{uuid.uuid4().hex[:12]}"


def edit_diff(before: str, after: str) -> list[str]:
    """The unified diff of an edited post (lines, `DIFF_CONTEXT` lines of context, no
    file header), as the REVIEW_DECISION event stores it."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), lineterm="", n=DIFF_CONTEXT
    )
    return [line for line in lines if not line.startswith(("---", "+++"))]


class TaskControl(TaskReads):
    """The task service's writes that a person makes after a task started (and the
    enqueue they share with `TaskService`)."""

    async def _enqueue(self, session: AsyncSession, task_id: str, *, workflow_id: str) -> None:
        """Enqueue the workflow `workflow_id` that runs `task_id` in `session`'s
        transaction (what it continues with is on the task: `Task.pending_answer`)."""
        options: EnqueueOptions = {
            "queue_name": QUEUE_NAME,
            "workflow_name": "postassist.run_task",
            "workflow_id": workflow_id,
            "app_version": VERSION,
        }
        connection = await session.connection()
        await connection.run_sync(
            lambda sync: self.client.enqueue_in_transaction(sync, options, task_id)
        )

    async def _write(
        self,
        task: Task,
        events: Sequence[Event],
        *,
        require: Mapping[str, Any],
        enqueue: str | None = None,
    ) -> Task:
        """Write `events` of `task` in one transaction if the task still has the
        `require`d column values (else `TaskStateConflictError`, nothing written); with
        `enqueue`, enqueue that workflow of the task in the same transaction. Publishes
        after the commit; returns the task."""
        async with self.session_factory() as session:
            rows = await self.event_log.write_many(session, task.id, list(events), require=require)
            if enqueue is not None:
                await self._enqueue(session, task.id, workflow_id=enqueue)
            await session.commit()
        if enqueue is not None:
            await self.event_log.announce_enqueued(task.id)
        await self._publish(rows, task.owner)
        return await self.get(task.id)

    async def _publish(self, rows: list[AgentLog], owner: str) -> None:
        for row in rows:
            await self.event_log.publish(row, owner=owner)

    async def pause(self, task_id: str, *, viewer: Viewer | None = None) -> Task:
        """Pause a task: a PENDING one becomes PAUSED at once and stays out of the queue
        until `resume`; a RUNNING one gets a PAUSE_REQUESTED event (`pause_requested`)
        and stops at its next node boundary (PAUSED, its slot freed). What it was to
        continue with (a review's REVISE, a revision's feedback) waits with it on the row.
        Pausing a PAUSED task returns it. Raises `TaskNotFoundError`, `TaskClosedError`
        (finished) and `TaskStateConflictError` (awaiting review, or a `verifyPost`
        check, whose caller waits for it)."""
        task = await self.get(task_id, viewer=viewer)
        if task.kind == TaskKind.VERIFY:
            raise _conflict(task, "a verifyPost check cannot be paused: its caller waits for it")
        for _ in range(3):  # it may start, or stop, between the read and the write
            status = TaskStatus(task.status)
            if status == TaskStatus.PAUSED or (
                status == TaskStatus.RUNNING and task.pause_requested
            ):
                return task
            if status == TaskStatus.PENDING:
                event = Event.task_status(
                    TaskStatus.PAUSED, "paused in the queue", data={"paused": True, "queued": True}
                )
            elif status == TaskStatus.RUNNING:
                message = "pause requested: the run stops at its next node boundary"
                event = Event(EventKind.PAUSE_REQUESTED, message, data={"requested": True})
            else:
                raise _conflict(task, "only a PENDING or RUNNING task can be paused")
            try:
                return await self._write(task, [event], require={"status": status.value})
            except TaskStateConflictError:
                task = await self.get(task_id)
        raise _conflict(task, "it kept changing; try again")

    async def resume(self, task_id: str, *, viewer: Viewer | None = None) -> Task:
        """Put a PAUSED task back in the queue (PENDING); a worker continues it from its
        checkpoint (or starts it, if it was paused before it ran). Raises
        `TaskNotFoundError`, `TaskClosedError` and `TaskStateConflictError` (not PAUSED)."""
        task = await self.get(task_id, viewer=viewer)
        if task.status != TaskStatus.PAUSED:
            raise _conflict(task, "only a PAUSED task can be resumed")
        workflow_id = _workflow_id(task_id, "resume")
        event = Event.task_status(
            TaskStatus.PENDING, "resume requested", data={"resume": True},
            result=TaskResult(workflow_id=workflow_id),
        )  # fmt: skip
        require = {"status": TaskStatus.PAUSED.value}
        return await self._write(task, [event], require=require, enqueue=workflow_id)

    async def review(
        self,
        task_id: str,
        decision: ReviewDecision,
        *,
        reviewer: str,
        content: str | None = None,
        feedback: str | None = None,
        expected_revision: int | None = None,
        viewer: Viewer | None = None,
    ) -> Task:
        """Answer the review of a task AWAITING_REVIEW, as principal `reviewer`:

        - APPROVE: COMPLETED with the post as it stands, or as edited in `content` (the
          edit must pass LinkedIn's hard limits, `ReviewInputError` naming the check;
          `approved` stays the verifiers' verdict on the draft they checked);
        - REVISE: another round of the Content team with `feedback` (required), then
          verification and review again (PENDING until a worker continues it);
        - REJECT: CANCELLED, `feedback` as the reason.

        A REVIEW_DECISION event records who decided what (and the diff of an edit).
        `expected_revision` (when given) must be the revision awaiting review.
        Raises `TaskNotFoundError`, `TaskClosedError` and `TaskStateConflictError` for a
        task not awaiting review, a stale revision or a second answer."""
        task = await self.get(task_id, viewer=viewer)
        if task.status != TaskStatus.AWAITING_REVIEW:
            raise _conflict(task, "only a task AWAITING_REVIEW takes a review decision")
        revision = task.revisions
        if expected_revision is not None and expected_revision != revision:
            raise _conflict(
                task,
                f"revision {expected_revision} does not await review; revision {revision} does",
            )
        require = {"status": TaskStatus.AWAITING_REVIEW.value, "revisions": revision}
        data: dict[str, Any] = {
            "decision": decision.value,
            "reviewer": reviewer,
            "revision": revision,
        }
        if decision == ReviewDecision.APPROVE:
            return await self._approve(task, content, data, require)
        if decision == ReviewDecision.REVISE:
            data["feedback"] = _required_text(feedback, "feedback", "say what to change")
            return await self._revise(task, data, require)
        data["feedback"] = (feedback or "").strip()
        return await self._reject(task, data, require)

    async def _reject(self, task: Task, data: dict[str, Any], require: Mapping[str, Any]) -> Task:
        """REVIEW_DECISION and CANCELLED, `data["feedback"]` the reason; the checkpoint
        thread is deleted by the workflow enqueued with them."""
        reviewer, reason = data["reviewer"], data["feedback"]
        decided = Event(EventKind.REVIEW_DECISION, f"REJECT by {reviewer}", data=data)
        message = f"rejected by {reviewer}" + (f": {reason}" if reason else "")
        ended = Event.task_status(TaskStatus.CANCELLED, message, data={"rejected": True})
        forget = _workflow_id(task.id, "forget")
        return await self._write(task, [decided, ended], require=require, enqueue=forget)

    async def _revise(self, task: Task, data: dict[str, Any], require: Mapping[str, Any]) -> Task:
        """REVIEW_DECISION and PENDING with the decision as the task's pending answer
        (`data`: decision, reviewer, revision, feedback), and the workflow that runs it."""
        decided = Event(EventKind.REVIEW_DECISION, f"REVISE by {data['reviewer']}", data=data)
        workflow_id = _workflow_id(task.id, "review")
        queued = Event.task_status(
            TaskStatus.PENDING, f"revision requested by {data['reviewer']}",
            data={"review": "REVISE"},
            result=TaskResult(workflow_id=workflow_id, pending_answer=dict(data)),
        )  # fmt: skip
        return await self._write(task, [decided, queued], require=require, enqueue=workflow_id)

    async def _approve(
        self, task: Task, content: str | None, data: dict[str, Any], require: Mapping[str, Any]
    ) -> Task:
        before = task.content or ""
        after = before if content is None or not content.strip() else content.strip()
        edited = after != before
        result: dict[str, Any] = {}
        if edited:
            for check, message in hard_violations(after, task.max_hashtags):
                raise ReviewInputError("content", f"content: {message}", check=check)
            result = {"content": after, "hashtags": hashtags_in(after)}
            data["diff"] = edit_diff(before, after)
        data["edited"] = edited
        reviewer = data["reviewer"]
        events = [
            Event(EventKind.REVIEW_DECISION, f"APPROVE by {reviewer}", data=data),
            completed_event(
                reports=task.verification_reports,
                revisions=task.revisions,
                content=after,
                message=f"approved by {reviewer}" + (" with edits" if edited else ""),
                data={"reviewed_by": reviewer, "edited": edited},
                result=result,
            ),
        ]
        forget = _workflow_id(task.id, "forget")  # deletes the checkpoint thread
        return await self._write(task, events, require=require, enqueue=forget)

    async def history(self, task_id: str, *, viewer: Viewer | None = None) -> list[Task]:
        """The revision chain `task_id` belongs to, oldest first: the first post and
        every follow-up revision of it (`revisePost`) that `viewer` may see."""
        task = await self.get(task_id, viewer=viewer)
        async with self.session_factory() as session:
            chain = await repository.list_revision_chain(
                session=session, root_id=task.revision_of or task.id
            )
        return [t for t in chain if viewer is None or viewer.can_see(t.owner)]


async def expire_reviews(event_log: EventLog, *, before: datetime) -> list[str]:
    """End every task that has awaited review since before `before` (its last event)
    FAILED with REVIEW_TIMEOUT (`REVIEW_TIMEOUT_HOURS`); the ids ended. A task answered
    meanwhile is left alone: the write requires the status and the `last_seq` it was
    read with. Any process may run it; two at once end each task once."""
    async with event_log.session_factory() as session:
        waiting = (
            await session.exec(
                select(Task)
                .where(col(Task.status) == TaskStatus.AWAITING_REVIEW.value)
                .where(col(Task.updated_at) < before)
            )
        ).all()
    ended = []
    for task in waiting:
        message = "nobody answered the review in time"
        event = Event.task_status(
            TaskStatus.FAILED, message, data={"error_code": FailureCode.REVIEW_TIMEOUT.value},
            result=TaskResult(error=message, error_code=FailureCode.REVIEW_TIMEOUT),
        )  # fmt: skip
        require = {"status": TaskStatus.AWAITING_REVIEW.value, "last_seq": task.last_seq}
        try:
            async with event_log.session_factory() as session:
                row = await event_log.write(session, task.id, event, require=require)
                await session.commit()
        except TaskClosedError:  # answered, cancelled or expired elsewhere meanwhile
            continue
        await event_log.publish(row, owner=task.owner)
        ended.append(task.id)
    return ended


__all__ = ["ReviewInputError", "TaskControl", "edit_diff", "expire_reviews"]
