"""The read side of the task service: what a principal may see of tasks, their events
and the queue.

Ownership is decided here and nowhere else: a `Viewer` sees a task it owns, an admin
every task; an unknown task and another principal's task read the same (None, or
`TaskNotFoundError`), so a task id tells a caller nothing about tasks that are not its.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from dbos import DBOSClient

from agents.runtime.execution import QUEUE_NAME
from db import repository
from db.engine import SessionFactory
from db.enums import TaskKind, TaskStatus
from db.event_log import EventLog, TaskNotFoundError
from db.models import AgentLog, Task

ItemT = TypeVar("ItemT")


class Viewer(Protocol):
    """Whoever reads tasks (`graph.security.principals.Principal` is one)."""

    def can_see(self, owner: str) -> bool:
        """Whether a task whose `Task.owner` is `owner` is visible to the viewer."""
        ...

    @property
    def owner_filter(self) -> str | None:
        """The owner to list tasks of: None (every task) for an admin."""
        ...


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One page of a list: `items` (at most the page's limit), whether more follow
    after the last item (`has_next`), and how many match the filters in all (`total`)."""

    items: list[ItemT]
    has_next: bool
    total: int


class TaskReads:
    """Reads of tasks, their events and the DBOS queue, with ownership applied."""

    def __init__(self, *, event_log: EventLog, client: DBOSClient) -> None:
        self.event_log = event_log
        self.client = client

    @property
    def session_factory(self) -> SessionFactory:
        """The event log's session factory."""
        return self.event_log.session_factory

    async def get(self, task_id: str, *, viewer: Viewer | None = None) -> Task:
        """The task. Raises `TaskNotFoundError` for an unknown id and, when `viewer` is
        given, for a task it may not see (the same error: ids leak nothing)."""
        async with self.session_factory() as session:
            task = await repository.get_task(session=session, task_id=task_id)
        if task is None or (viewer is not None and not viewer.can_see(task.owner)):
            raise TaskNotFoundError(task_id)
        return task

    async def visible(self, task_id: str, viewer: Viewer) -> Task | None:
        """The task if `viewer` may see it; None for an unknown id and for another
        principal's task alike."""
        try:
            return await self.get(task_id, viewer=viewer)
        except TaskNotFoundError:
            return None

    async def list_tasks(
        self,
        viewer: Viewer,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        status: TaskStatus | None = None,
        approved: bool | None = None,
        kind: TaskKind | None = None,
        batch_id: str | None = None,
    ) -> Page[Task]:
        """Up to `limit` (>= 1) of the tasks `viewer` may see, newest first, with
        `status`, `approved`, `kind` and `batch_id` when given; `after` is the keyset
        `(created_at, id)` of the previous page's last task. `total` counts every
        match, on every page."""
        where = repository.TaskFilter(
            status=status,
            approved=approved,
            owner=viewer.owner_filter,
            kind=kind,
            batch_id=batch_id,
        )
        async with self.session_factory() as session:
            rows = await repository.list_tasks(
                session=session, limit=limit + 1, after=after, where=where
            )
            total = await repository.count_tasks(session=session, where=where)
        return Page(rows[:limit], has_next=len(rows) > limit, total=total)

    async def list_agent_logs(
        self,
        task_id: str,
        viewer: Viewer,
        *,
        limit: int,
        after_seq: int = 0,
        team: str | None = None,
        agent: str | None = None,
    ) -> Page[AgentLog]:
        """Up to `limit` (>= 1) events of the task with `seq > after_seq`, in seq order,
        of `team` and/or `agent` when given; `total` counts every match. Raises
        `TaskNotFoundError` unless `viewer` may see the task (unknown or not its)."""
        await self.get(task_id, viewer=viewer)
        filters = {"task_id": task_id, "team": team, "agent": agent}
        async with self.session_factory() as session:
            rows = await repository.list_agent_logs(
                session=session, after_seq=after_seq, limit=limit + 1, **filters
            )
            total = await repository.count_agent_logs(session=session, **filters)
        return Page(rows[:limit], has_next=len(rows) > limit, total=total)

    async def queued_count(self, owner: str) -> int:
        """How many generations of principal `owner` wait in the queue (PENDING)."""
        async with self.session_factory() as session:
            queued = repository.TaskFilter(
                status=TaskStatus.PENDING, owner=owner, kind=TaskKind.GENERATE
            )
            return await repository.count_tasks(session=session, where=queued)

    async def queue_order(self) -> dict[str, int]:
        """One read of the DBOS queue: each queued task's id and its place (1 = the next
        to start); a retry's workflow counts for its task, at its first place."""
        queued = await self.client.list_queued_workflows_async(
            queue_name=QUEUE_NAME,
            status=["ENQUEUED"],
            sort_desc=False,
            load_input=False,
            load_output=False,
        )
        order: dict[str, int] = {}
        for place, workflow in enumerate(queued, start=1):
            order.setdefault(workflow.workflow_id.split(":")[0], place)
        return order

    async def queue_position(self, task_id: str) -> int | None:
        """1 for the next task to start, 2 after it...; None unless the task is queued."""
        return (await self.queue_order()).get(task_id)
