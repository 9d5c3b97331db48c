"""The root `Query`, composed from small per-area classes."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from db import VERSION
from db.enums import TaskKind as TaskKindValue
from db.enums import TaskStatus as TaskStatusValue
from db.event_log import TaskNotFoundError
from graph.api.context import Info
from graph.api.info import Health, ModelHealth, TeamInfo
from graph.api.pagination import decode_log_cursor, decode_task_cursor, encode_cursor, page_size
from graph.api.types import (
    AgentLogConnection,
    Task,
    TaskConnection,
    TaskEvent,
    TaskKind,
    TaskStatus,
)
from graph.errors import task_not_found
from graph.health import readiness


@strawberry.type
class TaskQuery:
    @strawberry.field(description="One task by id, or null.")
    async def task(self, info: Info, id: strawberry.ID) -> Task | None:
        row = await info.context.visible_task(str(id))
        return Task.from_model(row) if row else None

    @strawberry.field(
        description="The caller's tasks (an admin's: every task), newest first; `first` is "
        "capped at 100. `approved: false` finds completed tasks whose final post a verifier "
        "still rejects; `kind: GENERATE` leaves out the checks `verifyPost` ran, "
        "`kind: VERIFY` lists only those; `batchId` lists one `generatePosts` batch."
    )
    async def tasks(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: TaskStatus | None = None,
        approved: bool | None = None,
        kind: TaskKind | None = None,
        batch_id: strawberry.ID | None = None,
    ) -> TaskConnection:
        limit = page_size(first)
        keyset = decode_task_cursor(after) if after is not None else None
        page = await info.context.services.tasks.list_tasks(
            info.context.principal,
            limit=limit,
            after=keyset,
            status=TaskStatusValue(status.value) if status else None,
            approved=approved,
            kind=TaskKindValue(kind.value) if kind else None,
            batch_id=str(batch_id) if batch_id is not None else None,
        )
        nodes = [
            (encode_cursor("task", r.created_at.isoformat(), r.id), Task.from_model(r))
            for r in page.items
        ]
        return TaskConnection.build(
            nodes, has_next=page.has_next, has_previous=after is not None, total=page.total
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
        try:
            page = await info.context.services.tasks.list_agent_logs(
                str(task_id),
                info.context.principal,
                limit=limit,
                after_seq=after_seq,
                team=team,
                agent=agent,
            )
        except TaskNotFoundError:
            raise task_not_found(task_id, field="taskId") from None
        nodes = [(encode_cursor("log", str(r.seq)), TaskEvent.from_model(r)) for r in page.items]
        return AgentLogConnection.build(
            nodes, has_next=page.has_next, has_previous=after is not None, total=page.total
        )


@strawberry.type
class TeamQuery:
    @strawberry.field(description="The static team/agent structure.")
    def teams(self) -> list[TeamInfo]:
        return TeamInfo.all()


@strawberry.type
class HealthQuery:
    @strawberry.field(description="Database, event bus and model status.")
    async def health(self, info: Info) -> Health:
        services = info.context.services
        seconds = services.settings.readiness_timeout_seconds
        report = await readiness(services, services.model_monitor, seconds)
        database, bus = report["checks"]["database"]["ok"], report["checks"]["bus"]["ok"]
        model = services.model_monitor.status()
        return Health(
            status="ok" if database and bus and model.ready else "degraded",
            database=database,
            bus=bus,
            model=ModelHealth.of(services.model.provider, services.model.name, model),
            version=VERSION,
        )


Query = merge_types("Query", (TaskQuery, AgentLogQuery, TeamQuery, HealthQuery))
