"""Starting, cancelling, retrying and waiting for tasks from any replica, through
DBOS's client; the reads (with ownership) come from `agents.runtime.task_reads`.

A task row, its TASK_QUEUED event (with its place in the queue) and its workflow are
written in one transaction (`DBOSClient.
enqueue_in_transaction` on the session's connection; the DBOS system tables live in
the app's database), so neither exists without the other. Cancel goes through DBOS and
reaches whichever worker runs the task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from dbos import DBOS, DBOSClient

from agents.runtime.control import ReviewInputError, TaskControl
from agents.runtime.idempotency import Claim
from agents.runtime.task_reads import Viewer
from agents.teams.state import VERIFICATION_TEAM, initial_teams
from db import repository
from db.engine import plain_url
from db.enums import EventKind, TaskKind, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskStateConflictError
from db.events import Event, TaskResult
from db.models import LOCAL_OWNER, PostRequest, Task, VerifyRequest
from db.snapshot import Teams

#: Seconds `cancel` waits for the worker that runs a task to write CANCELLED before it
#: writes it itself (the worker is gone, or the run never started).
CANCEL_WAIT = 3.0


class TaskService(TaskControl):
    """The application layer for tasks: creates, cancels, retries and waits for them,
    (from `TaskControl`) pauses, resumes and reviews them, and (from `TaskReads`) reads
    them as a `Viewer` may see them. Any process may use it, worker or not."""

    async def create_generation(
        self, request: PostRequest, *, owner: str = LOCAL_OWNER, claim: Claim | None = None
    ) -> Task:
        """Store a PENDING generation task of principal `owner` with its queued
        workflow (and `claim`'s idempotency key, in the same transaction); return it.
        Raises `Replayed` / `IdempotencyConflictError` (`agents.runtime.idempotency`)
        when a concurrent submission took the key first."""
        return await self._create(
            request, TaskKind.GENERATE, initial_teams(), owner=owner, claim=claim
        )

    async def run_verification(self, request: VerifyRequest, *, owner: str = LOCAL_OWNER) -> Task:
        """Queue the Verification team alone on `request.content` (a task of principal
        `owner`), wait for it and return the finished task (bound the wait with
        `asyncio.timeout`)."""
        teams = initial_teams(teams=(VERIFICATION_TEAM,))
        task = await self._create(
            request, TaskKind.VERIFY, teams, content=request.content, owner=owner
        )
        return await self.wait(task.id)

    async def revise_post(
        self, task_id: str, feedback: str, *, owner: str = LOCAL_OWNER, viewer: Viewer | None = None
    ) -> Task:
        """Start a follow-up revision of the COMPLETED generation `task_id`: a new task of
        `owner` that continues from the parent's research notes and post with the
        reviewer's `feedback` (research is not repeated), linked by `parent_id` and
        `revision_of` (the first post of the chain). Raises `TaskNotFoundError`,
        `TaskStateConflictError` (not a COMPLETED generation) and `ReviewInputError`
        (blank feedback). The parent's `callback_url` (and its secret) carries over only
        to a revision of the same owner."""
        parent = await self.get(task_id, viewer=viewer)
        if parent.status != TaskStatus.COMPLETED or parent.kind != TaskKind.GENERATE:
            raise TaskStateConflictError(
                f"task {task_id} is a {parent.status} {parent.kind}; only a COMPLETED "
                "generation can be revised"
            )
        text = (feedback or "").strip()
        if not text:
            raise ReviewInputError("feedback", "feedback: say what to change")
        request = PostRequest.model_validate(parent, from_attributes=True)
        if parent.owner != owner:  # an admin's revision: the parent's receiver is not its own
            request = request.model_copy(update={"callback_url": None})
        links = {"parent_id": parent.id, "revision_of": parent.revision_of or parent.id}
        return await self._create(
            request, TaskKind.GENERATE, initial_teams(), owner=owner, links=links,
            answer={"kind": "revise", "feedback": text},
        )  # fmt: skip

    async def _create(
        self,
        request: PostRequest,
        kind: TaskKind,
        teams: Teams,
        *,
        owner: str,
        content: str | None = None,
        links: Mapping[str, str | None] | None = None,
        answer: dict[str, Any] | None = None,
        claim: Claim | None = None,
    ) -> Task:
        async with self.session_factory() as session:
            task = await repository.create_task(
                session=session, request=request, kind=kind, teams=teams, content=content,
                owner=owner, links=links, commit=False,
            )  # fmt: skip
            await self._enqueue(session, task.id, workflow_id=task.id)
            pending = repository.TaskFilter(status=TaskStatus.PENDING)
            position = await repository.count_tasks(session=session, where=pending)
            data: dict[str, Any] = {"position": position}
            result = None
            if answer is not None:  # a follow-up revision: what its run starts from
                data.update({"parent_id": task.parent_id, "feedback": answer.get("feedback")})
                result = TaskResult(pending_answer=answer)
            message = f"queued at position {position}"
            queued = Event(EventKind.TASK_QUEUED, message, data=data, result=result)
            row = await self.event_log.write(session, task.id, queued)
            if claim is not None:  # the key's row commits with the task, or neither does
                await claim.record(session, [task.id])
            await session.commit()
        await self.event_log.announce_enqueued(task.id)
        await self.event_log.publish(row)
        return task  # the event's fold updated this very object before the commit

    async def wait(self, task_id: str) -> Task:
        """The task once it is terminal (bound the wait with `asyncio.timeout`).

        Woken by the task's events (`EventLog.follow`, from the task's `last_seq` when
        read: a terminal event written after that read is among the rows the follow
        replays, so none is missed); no polling beyond the follow's own. Raises
        `TaskNotFoundError` for an unknown id."""
        while True:
            task = await self.get(task_id)
            if TaskStatus(task.status).is_terminal:
                return task
            async for _ in self.event_log.follow(task_id, after_seq=task.last_seq):
                pass  # it ends after the terminal event; a retry may reopen the task

    async def cancel(self, task_id: str, *, viewer: Viewer | None = None) -> Task:
        """Cancel a task that has not finished (PENDING, RUNNING, PAUSED or
        AWAITING_REVIEW) wherever it runs; return it CANCELLED.

        The workflow is cancelled in DBOS (a queued one leaves the queue, a running
        one's step gets `CancelledError` on its worker, which writes CANCELLED). If no
        worker writes it within `CANCEL_WAIT` seconds, it is written here. Raises
        `TaskNotFoundError` (also for a task `viewer`, when given, may not see), and
        `TaskClosedError` when the task already finished.
        """
        task = await self.get(task_id, viewer=viewer)
        if TaskStatus(task.status).is_terminal:
            raise TaskClosedError(f"task {task_id} already finished as {task.status}")
        for workflow_id in dict.fromkeys((task_id, *self._retry_ids(task), task.workflow_id)):
            if workflow_id is not None:
                await self.client.cancel_workflow_async(workflow_id)
        if task.status == TaskStatus.RUNNING:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT):
                    return await self._cancelled(await self.wait(task_id))
        with contextlib.suppress(TaskClosedError):
            await self.event_log.append(task_id, Event.task_status(TaskStatus.CANCELLED))
        return await self._cancelled(await self.get(task_id))

    @staticmethod
    async def _cancelled(task: Task) -> Task:
        if task.status != TaskStatus.CANCELLED:
            raise TaskClosedError(f"task {task.id} already finished as {task.status}")
        return task

    @staticmethod
    def _retry_ids(task: Task) -> list[str]:
        return [f"{task.id}:retry-{n}" for n in range(1, task.attempt + 1)]

    async def retry(self, task_id: str, *, viewer: Viewer | None = None) -> Task:
        """Run a FAILED task again from its last checkpoint; return it PENDING.
        Raises `TaskNotFoundError` (also for a task `viewer`, when given, may not see),
        and `TaskClosedError` unless the task FAILED."""
        task = await self.get(task_id, viewer=viewer)
        workflow_id = f"{task_id}:retry-{task.attempt}"
        async with self.session_factory() as session:
            row = await self.event_log.reopen(session, task_id, workflow_id=workflow_id)
            if row is None:
                raise TaskClosedError(f"only a FAILED task can be retried, not {task.status}")
            await self._enqueue(session, task_id, workflow_id=workflow_id)
            await session.commit()
        await self.event_log.announce_enqueued(task_id)
        await self.event_log.publish(row)
        return await self.get(task_id)


@contextlib.asynccontextmanager
async def open_task_service(database_url: str, event_log: EventLog) -> AsyncIterator[TaskService]:
    """A `TaskService` with its own DBOS client for the context's lifetime; DBOS's
    system tables are created or migrated first (idempotent), so an API-only replica
    can enqueue before any worker has started."""
    url = plain_url(database_url)
    await asyncio.to_thread(DBOS.migrate, url)
    client = DBOSClient(system_database_url=url)
    try:
        yield TaskService(event_log=event_log, client=client)
    finally:
        client.destroy()
