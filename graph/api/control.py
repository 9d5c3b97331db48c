"""Mutations that put a person in the loop: pause and resume a task, answer its review,
and revise a finished post (`agents.runtime.control` does the work)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import strawberry

from agents.runtime.control import ReviewInputError
from db.enums import ReviewDecision as ReviewDecisionValue
from graph.api.context import Info
from graph.api.guards import queue_place, task_errors
from graph.api.types import ReviewDecision, Task
from graph.errors import UserInputError
from graph.security.rate_limits import RateLimited


@contextlib.asynccontextmanager
async def _review_input() -> AsyncIterator[None]:
    """BAD_USER_INPUT for an answer the task cannot take: `extensions.field` names the
    argument, `extensions.check` the hard limit an edited post breaks."""
    try:
        yield
    except ReviewInputError as exc:
        details = {"field": exc.field} | ({"check": exc.check} if exc.check else {})
        raise UserInputError(exc.message, **details) from None


@strawberry.type
class ControlMutation:
    @strawberry.mutation(
        description="Pause a task: a PENDING one is held out of the queue (PAUSED at once); "
        "a RUNNING one stops at its next node boundary (pauseRequested, then PAUSED, its "
        "worker slot freed). CONFLICT for a task that finished or awaits review.",
        extensions=[RateLimited()],
    )
    async def pause_task(self, info: Info, id: strawberry.ID) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(id):
            return Task.from_model(await tasks.pause(str(id), viewer=principal))

    @strawberry.mutation(
        description="Put a PAUSED task back in the queue; a worker continues it from its "
        "checkpoint. CONFLICT unless PAUSED.",
        extensions=[RateLimited()],
    )
    async def resume_task(self, info: Info, id: strawberry.ID) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(id):
            await tasks.get(str(id), viewer=principal)  # NOT_FOUND comes before the queue cap
            async with queue_place(info):
                return Task.from_model(await tasks.resume(str(id), viewer=principal))

    @strawberry.mutation(
        description="Answer the review of a task AWAITING_REVIEW. APPROVE completes it with "
        "the post, or with `content` (an edit must pass LinkedIn's hard limits: "
        "BAD_USER_INPUT with extensions.check); REVISE sends `feedback` to the Content team "
        "for another round, then verification and review again; REJECT cancels it "
        "(`feedback` is the reason). `expectedRevision` is the revision the answer is "
        "about: a stale one, or a second answer, is CONFLICT.",
        extensions=[RateLimited()],
    )
    async def review_task(
        self,
        info: Info,
        id: strawberry.ID,
        decision: ReviewDecision,
        content: str | None = None,
        feedback: str | None = None,
        expected_revision: int | None = None,
    ) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(id), _review_input():
            row = await tasks.review(
                str(id),
                ReviewDecisionValue(decision.value),
                reviewer=principal.id,
                content=content,
                feedback=feedback,
                expected_revision=expected_revision,
                viewer=principal,
            )
        return Task.from_model(row)

    @strawberry.mutation(
        description="Ask for another version of a COMPLETED post: a new task that continues "
        "from its research notes and post with `feedback` (research is not repeated), "
        "linked by parentId and revisionOf; the chain is `history`. CONFLICT unless the "
        "task is a COMPLETED generation.",
        extensions=[RateLimited()],
    )
    async def revise_post(self, info: Info, task_id: strawberry.ID, feedback: str) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(task_id), _review_input():
            await tasks.get(str(task_id), viewer=principal)
            async with queue_place(info):
                row = await tasks.revise_post(
                    str(task_id), feedback, owner=principal.id, viewer=principal
                )
        return Task.from_model(row)
