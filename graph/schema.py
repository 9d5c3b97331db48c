"""The Strawberry schema: `Query`, `Mutation` and `Subscription` composed per area."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from sqlalchemy import text
from strawberry.tools import merge_types

from agents.state import PostRequest
from db import repository
from db.event_log import TaskClosedError, TaskNotFoundError
from db.models import TaskStatus as TaskStatusValue
from graph.context import Info
from graph.errors import (
    ConflictError,
    MaskUnexpectedErrors,
    NotFoundError,
    ServiceUnavailableError,
    UserInputError,
)
from graph.types import (
    AgentLogConnection,
    Health,
    ModelHealth,
    Task,
    TaskConnection,
    TaskEvent,
    TaskStatus,
    TeamInfo,
    Tone,
    VerificationReport,
    decode_log_cursor,
    decode_task_cursor,
    encode_cursor,
    page_size,
)

VERSION = "0.1.0"
#: Input limits, from the seed API's GeneratePostInput (context and post: ours, sized so
#: a prompt fits the local model's 4096-token window).
TITLE_MIN, TITLE_MAX = 5, 500
CONTEXT_MAX = 10_000
AUDIENCE_MAX = 200
HASHTAGS_MIN, HASHTAGS_MAX = 1, 20
POST_MAX = 10_000


@strawberry.input(description="What to write about, and how.")
class GeneratePostInput:
    paper_title: str = strawberry.field(description="5-500 characters")
    additional_context: str = strawberry.field(
        default="", description="abstract, results, notes; at most 10000 characters"
    )
    target_audience: str = strawberry.field(default="professional", description="1-200 chars")
    tone: Tone = Tone.PROFESSIONAL
    include_technical_details: bool = True
    max_hashtags: int = strawberry.field(default=10, description="1-20")


@strawberry.input(description="A post to check with the Verification team alone.")
class VerifyPostInput:
    content: str = strawberry.field(description="the post, 1-10000 characters")
    paper_title: str = strawberry.field(description="5-500 characters")
    additional_context: str = strawberry.field(
        default="", description="what the post's claims must agree with"
    )
    target_audience: str = "professional"
    tone: Tone = Tone.PROFESSIONAL
    max_hashtags: int = strawberry.field(default=10, description="1-20")


def _check(errors: dict[str, str], field: str, ok: bool, message: str) -> None:
    if not ok:
        errors[field] = message


def _request(
    *,
    paper_title: str,
    additional_context: str,
    target_audience: str,
    tone: Tone,
    include_technical_details: bool,
    max_hashtags: int,
    extra: dict[str, str] | None = None,
) -> PostRequest:
    """Validate the shared input fields; raise `UserInputError` naming every bad field."""
    errors = dict(extra or {})
    title = paper_title.strip()
    audience = target_audience.strip()
    _check(
        errors,
        "paperTitle",
        TITLE_MIN <= len(title) <= TITLE_MAX,
        f"paperTitle must be {TITLE_MIN}-{TITLE_MAX} characters",
    )
    _check(
        errors,
        "additionalContext",
        len(additional_context) <= CONTEXT_MAX,
        f"additionalContext must be at most {CONTEXT_MAX} characters",
    )
    _check(
        errors,
        "targetAudience",
        1 <= len(audience) <= AUDIENCE_MAX,
        f"targetAudience must be 1-{AUDIENCE_MAX} characters",
    )
    _check(
        errors,
        "maxHashtags",
        HASHTAGS_MIN <= max_hashtags <= HASHTAGS_MAX,
        f"maxHashtags must be {HASHTAGS_MIN}-{HASHTAGS_MAX}",
    )
    if errors:
        field = next(iter(errors))
        raise UserInputError(errors[field], field=field, fields=errors)
    return PostRequest(
        paper_title=title,
        additional_context=additional_context.strip(),
        target_audience=audience,
        tone=tone.value,
        include_technical_details=include_technical_details,
        max_hashtags=max_hashtags,
    )


def _require_model(info: Info) -> None:
    if not info.context.services.model_ready():
        raise ServiceUnavailableError("the model is not ready; see the health query")


# --- queries -----------------------------------------------------------------------------


@strawberry.type
class TaskQuery:
    @strawberry.field(description="One task by id, or null.")
    async def task(self, info: Info, id: strawberry.ID) -> Task | None:
        async with info.context.services.session_factory() as session:
            row = await repository.get_task(session=session, task_id=str(id))
        return Task.from_model(row) if row else None

    @strawberry.field(description="Tasks, newest first; `first` is capped at 100.")
    async def tasks(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: TaskStatus | None = None,
    ) -> TaskConnection:
        limit = page_size(first)
        keyset = None
        if after is not None:
            keyset = decode_task_cursor(after)
        status_value = TaskStatusValue(status.value) if status else None
        async with info.context.services.session_factory() as session:
            rows = await repository.list_tasks(
                session=session, limit=limit + 1, after=keyset, status=status_value
            )
            total = await repository.count_tasks(session=session, status=status_value)
        nodes = [
            (encode_cursor("task", r.created_at.isoformat(), r.id), Task.from_model(r))
            for r in rows[:limit]
        ]
        return TaskConnection.build(
            nodes, has_next=len(rows) > limit, has_previous=after is not None, total=total
        )


@strawberry.type
class AgentLogQuery:
    @strawberry.field(description="A task's events in seq order; `first` is capped at 100.")
    async def agent_logs(
        self,
        info: Info,
        task_id: strawberry.ID,
        first: int = 100,
        after: str | None = None,
        team: str | None = None,
        agent: str | None = None,
    ) -> AgentLogConnection:
        limit = page_size(first)
        after_seq = decode_log_cursor(after) if after else 0
        async with info.context.services.session_factory() as session:
            if await repository.get_task(session=session, task_id=str(task_id)) is None:
                raise NotFoundError(f"no task with id {task_id}", field="taskId")
            rows = await repository.list_agent_logs(
                session=session,
                task_id=str(task_id),
                after_seq=after_seq,
                limit=limit + 1,
                team=team,
                agent=agent,
            )
            total = await repository.count_agent_logs(
                session=session, task_id=str(task_id), team=team, agent=agent
            )
        nodes = [(encode_cursor("log", str(r.seq)), TaskEvent.from_model(r)) for r in rows[:limit]]
        return AgentLogConnection.build(
            nodes, has_next=len(rows) > limit, has_previous=after is not None, total=total
        )


@strawberry.type
class TeamQuery:
    @strawberry.field(description="The static team/agent structure.")
    def teams(self) -> list[TeamInfo]:
        return TeamInfo.all()


@strawberry.type
class HealthQuery:
    @strawberry.field(description="Database and model status.")
    async def health(self, info: Info) -> Health:
        services = info.context.services
        try:
            async with services.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            database = True
        except Exception:
            database = False
        ready = services.model_ready()
        return Health(
            status="ok" if database and ready else "degraded",
            database=database,
            model=ModelHealth(
                provider=services.settings.llm_provider, model=services.model_name, ready=ready
            ),
            version=VERSION,
        )


Query = merge_types("Query", (TaskQuery, AgentLogQuery, TeamQuery, HealthQuery))


# --- mutations ---------------------------------------------------------------------------


@strawberry.type
class GenerationMutation:
    @strawberry.mutation(description="Start a generation; returns the PENDING task at once.")
    async def generate_post(self, info: Info, input: GeneratePostInput) -> Task:
        request = _request(
            paper_title=input.paper_title,
            additional_context=input.additional_context,
            target_audience=input.target_audience,
            tone=input.tone,
            include_technical_details=input.include_technical_details,
            max_hashtags=input.max_hashtags,
        )
        _require_model(info)
        row = await info.context.services.runner.create_generation(request)
        return Task.from_model(row)

    @strawberry.mutation(description="Run the Verification team alone on a post; waits.")
    async def verify_post(self, info: Info, input: VerifyPostInput) -> list[VerificationReport]:
        extra = {}
        if not input.content.strip() or len(input.content) > POST_MAX:
            extra["content"] = f"content must be 1-{POST_MAX} characters"
        request = _request(
            paper_title=input.paper_title,
            additional_context=input.additional_context,
            target_audience=input.target_audience,
            tone=input.tone,
            include_technical_details=True,
            max_hashtags=input.max_hashtags,
            extra=extra,
        )
        _require_model(info)
        row = await info.context.services.runner.run_verification(
            content=input.content, request=request
        )
        if row.status != TaskStatusValue.COMPLETED:
            raise ServiceUnavailableError(
                f"verification {row.status.lower()}: {row.error or 'no reports'}", taskId=row.id
            )
        return [VerificationReport.from_model(r) for r in row.verification_reports]

    @strawberry.mutation(description="Cancel a PENDING or RUNNING task.")
    async def cancel_task(self, info: Info, id: strawberry.ID) -> Task:
        try:
            row = await info.context.services.runner.cancel(str(id))
        except TaskNotFoundError:
            raise NotFoundError(f"no task with id {id}", field="id") from None
        except TaskClosedError as exc:
            raise ConflictError(str(exc), field="id") from None
        return Task.from_model(row)


Mutation = merge_types("Mutation", (GenerationMutation,))


# --- subscriptions -----------------------------------------------------------------------


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="A task's events with seq > afterSeq: stored ones, then live ones; "
        "completes after the terminal event. Reconnect with the last seq seen."
    )
    async def task_progress(
        self, info: Info, task_id: strawberry.ID, after_seq: int = 0
    ) -> AsyncGenerator[TaskEvent, None]:
        if after_seq < 0:
            raise UserInputError("afterSeq must be >= 0", field="afterSeq")
        try:
            async for row in info.context.services.event_log.follow(
                str(task_id), after_seq=after_seq
            ):
                yield TaskEvent.from_model(row)
        except TaskNotFoundError:
            raise NotFoundError(f"no task with id {task_id}", field="taskId") from None

    @strawberry.subscription(
        description="Every task's status changes from now on (optionally one status)."
    )
    async def task_updates(
        self, info: Info, status: TaskStatus | None = None
    ) -> AsyncGenerator[Task, None]:
        services = info.context.services
        async for notice in services.event_log.follow_status():
            if status is not None and notice["status"] != status.value:
                continue
            async with services.session_factory() as session:
                row = await repository.get_task(session=session, task_id=notice["task_id"])
            if row is not None:
                yield Task.from_model(row)


def build_schema() -> strawberry.Schema:
    """Return the PostAssist schema (errors masked unless they are PostAssistErrors)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[MaskUnexpectedErrors],
    )


__all__ = ["build_schema"]
