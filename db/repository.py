"""Keyword-only repository functions over `Task` and `AgentLog`; each takes the session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.enums import TaskKind, TaskStatus
from db.messages import new_secret
from db.models import LOCAL_OWNER, AgentLog, PostRequest, Task
from db.snapshot import Teams


async def create_task(
    *,
    session: AsyncSession,
    request: PostRequest,
    kind: TaskKind,
    teams: Teams,
    content: str | None = None,
    owner: str = LOCAL_OWNER,
    links: Mapping[str, str | None] | None = None,
    commit: bool = True,
) -> Task:
    """Insert a PENDING task for `request` with `last_seq = 0` and commit (or, with
    `commit=False`, only flush: the caller's transaction decides); return it.

    `teams` is the initial snapshot of the team/agent structure (every status IDLE);
    `content` is the post to check, for a VERIFY task; `owner` the id of the principal
    that asked for it; `links` its `parent_id`, `revision_of` and `batch_id` (any other
    key raises `ValueError`). Its `workflow_id` is its own id (the first run's). A task
    with a `callback_url` gets its signing secret here: a revision its parent's when they
    have one owner (the receiver keeps one secret per chain), any other a new one.
    """
    extra = dict(links or {})
    if unknown := set(extra) - {"parent_id", "revision_of", "batch_id"}:
        raise ValueError(f"not a link between tasks: {', '.join(sorted(unknown))}")
    fields = {"kind": kind, "teams": teams.dump(), "content": content, "owner": owner, **extra}
    task = Task.model_validate(request, update=fields)
    task.workflow_id = task.id
    if task.callback_url:
        parent = await session.get(Task, task.parent_id) if task.parent_id else None
        same_owner = parent is not None and parent.owner == task.owner
        task.callback_secret = (parent.callback_secret if same_owner else None) or new_secret()
    session.add(task)
    if not commit:
        await session.flush()
        return task
    await session.commit()
    await session.refresh(task)
    return task


async def get_task(*, session: AsyncSession, task_id: str) -> Task | None:
    """Return the task with `task_id`, or None."""
    return await session.get(Task, task_id)


#: Most tasks `list_revision_chain` returns (the first post and its newest revisions).
MAX_CHAIN = 100


async def list_revision_chain(*, session: AsyncSession, root_id: str) -> list[Task]:
    """The first post `root_id` and every task that revises it (`Task.revision_of`),
    oldest first; at most `MAX_CHAIN` (the oldest revisions beyond it are left out)."""
    newest = (
        select(Task)
        .where(or_(col(Task.id) == root_id, col(Task.revision_of) == root_id))
        .order_by(col(Task.created_at).desc(), col(Task.id).desc())
        .limit(MAX_CHAIN)
    )
    chain = list((await session.exec(newest)).all())
    chain.reverse()
    return chain


@dataclass(frozen=True, kw_only=True)
class TaskFilter:
    """Which tasks a list or a count takes: those with this `status`, `approved` (the
    final post's verdict), `owner` (a principal's id), `kind` and `batch_id`; a field left None
    does not filter. `TaskFilter()` takes every task."""

    status: TaskStatus | None = None
    approved: bool | None = None
    owner: str | None = None
    kind: TaskKind | None = None
    batch_id: str | None = None

    def apply(self, query: Any) -> Any:
        """`query` (a select over `Task`) with a WHERE clause for each field given."""
        if self.kind is not None:
            query = query.where(Task.kind == self.kind.value)
        if self.owner is not None:
            query = query.where(Task.owner == self.owner)
        if self.status is not None:
            query = query.where(Task.status == self.status.value)
        if self.approved is not None:
            query = query.where(Task.approved == self.approved)
        if self.batch_id is not None:
            query = query.where(Task.batch_id == self.batch_id)
        return query


#: The filter that takes every task.
EVERY_TASK = TaskFilter()


async def list_tasks(
    *,
    session: AsyncSession,
    limit: int,
    after: tuple[datetime, str] | None = None,
    where: TaskFilter = EVERY_TASK,
) -> list[Task]:
    """Return up to `limit` tasks that `where` takes, newest first.

    `after` is the keyset `(created_at, id)` of the last task of the previous page;
    only tasks strictly older in `(created_at DESC, id DESC)` order are returned.
    """
    query = where.apply(select(Task))
    if after is not None:
        created_at, task_id = after
        query = query.where(
            or_(
                col(Task.created_at) < created_at,
                and_(col(Task.created_at) == created_at, col(Task.id) < task_id),
            )
        )
    query = query.order_by(col(Task.created_at).desc(), col(Task.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def count_tasks(*, session: AsyncSession, where: TaskFilter = EVERY_TASK) -> int:
    """Return how many tasks `where` takes."""
    query = where.apply(select(func.count()).select_from(Task))
    return int((await session.exec(query)).one())


async def list_agent_logs(
    *,
    session: AsyncSession,
    task_id: str,
    after_seq: int = 0,
    limit: int = 100,
    team: str | None = None,
    agent: str | None = None,
) -> list[AgentLog]:
    """Return up to `limit` events of `task_id` with `seq > after_seq`, in `seq` order,
    optionally only those of `team` and/or `agent`."""
    query = select(AgentLog).where(AgentLog.task_id == task_id, col(AgentLog.seq) > after_seq)
    if team is not None:
        query = query.where(AgentLog.team == team)
    if agent is not None:
        query = query.where(AgentLog.agent == agent)
    query = query.order_by(col(AgentLog.seq)).limit(limit)
    return list((await session.exec(query)).all())


async def count_agent_logs(
    *, session: AsyncSession, task_id: str, team: str | None = None, agent: str | None = None
) -> int:
    """Return how many events of `task_id` match the `team`/`agent` filters."""
    query = select(func.count()).select_from(AgentLog).where(AgentLog.task_id == task_id)
    if team is not None:
        query = query.where(AgentLog.team == team)
    if agent is not None:
        query = query.where(AgentLog.agent == agent)
    return int((await session.exec(query)).one())
