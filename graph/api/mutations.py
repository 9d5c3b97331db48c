"""The root `Mutation`, composed from small per-area classes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.tools import merge_types

from db.enums import TaskStatus
from db.models import PostRequest
from db.models import Task as TaskRow
from graph.api.context import Info
from graph.api.control import ControlMutation
from graph.api.guards import queue_place, task_errors
from graph.api.idempotency import KEY_HELP, IdempotencyKeyArgument, Idempotent, claim_of
from graph.api.inputs import GeneratePostInput, VerifyPostInput
from graph.api.outputs import VerificationReport
from graph.api.types import Task
from graph.api.webhooks import check_callbacks
from graph.errors import ServiceUnavailableError
from graph.security.rate_limits import RateLimited


def _requests(kwargs: Mapping[str, Any]) -> list[PostRequest]:
    return [kwargs["input"].to_request()]


def _one(tasks: list[TaskRow]) -> Task:
    return Task.from_model(tasks[0])


@strawberry.type
class GenerationMutation:
    @strawberry.mutation(
        description=f"Start a generation; returns the PENDING task at once. {KEY_HELP}",
        extensions=[RateLimited(), Idempotent("generatePost", _requests, _one)],
    )
    async def generate_post(
        self, info: Info, input: GeneratePostInput, idempotency_key: IdempotencyKeyArgument = None
    ) -> Task:
        request = input.to_request()
        await check_callbacks(info, [request])
        owner = info.context.principal.id
        claim = claim_of(info, "generatePost", [request], idempotency_key)
        async with queue_place(info):
            row = await info.context.services.tasks.create_generation(
                request, owner=owner, claim=claim
            )
        return Task.from_model(row)

    @strawberry.mutation(
        description="Run the Verification team alone on a post; waits.",
        extensions=[RateLimited()],
    )
    async def verify_post(self, info: Info, input: VerifyPostInput) -> list[VerificationReport]:
        request = input.to_request()
        services = info.context.services
        owner = info.context.principal.id
        try:
            async with asyncio.timeout(services.settings.generation_timeout_seconds):
                async with queue_place(info, held=True):
                    row = await services.tasks.run_verification(request, owner=owner)
        except TimeoutError:
            raise ServiceUnavailableError("verification did not finish in time") from None
        if row.status != TaskStatus.COMPLETED:
            raise ServiceUnavailableError(
                f"verification {row.status.lower()}: {row.error or 'no reports'}", taskId=row.id
            )
        return VerificationReport.of_task(row)

    @strawberry.mutation(
        description="Cancel a PENDING or RUNNING task, on whichever worker runs it.",
        extensions=[RateLimited()],
    )
    async def cancel_task(self, info: Info, id: strawberry.ID) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(id):
            return Task.from_model(await tasks.cancel(str(id), viewer=principal))

    @strawberry.mutation(
        description="Run a FAILED task again from its last checkpoint; CONFLICT otherwise.",
        extensions=[RateLimited()],
    )
    async def retry_task(self, info: Info, id: strawberry.ID) -> Task:
        tasks, principal = info.context.services.tasks, info.context.principal
        async with task_errors(id):
            await tasks.get(str(id), viewer=principal)  # NOT_FOUND comes before the queue cap
            async with queue_place(info):
                return Task.from_model(await tasks.retry(str(id), viewer=principal))


Mutation = merge_types("Mutation", (GenerationMutation, ControlMutation))
