"""The task service's reads: ownership (an unknown and a foreign task read the same),
task and event pages with filters and cursors, the queued count and the queue order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from broadcaster import Broadcast

from agents.runtime.tasks import TaskService
from agents.teams.state import initial_teams
from db import repository
from db.engine import create_engine, create_session_factory
from db.enums import EventKind, TaskKind, TaskStatus
from db.event_log import EventLog, TaskNotFoundError
from db.events import Event
from db.models import PostRequest, Task
from graph.security.principals import Principal

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(paper_title="Attention Is All You Need", additional_context="attention")


#: The real principals: the reads take any `Viewer`, and the API passes these.
ALICE, BOB = Principal("key:alice", "alice"), Principal("key:bob", "bob")
ADMIN = Principal("key:root", "root", admin=True)


class FakeQueue:
    """The one DBOS client call the reads make: the queued workflows, in order."""

    def __init__(self, workflow_ids: list[str]) -> None:
        self.workflow_ids = workflow_ids
        self.calls: list[dict[str, Any]] = []

    async def list_queued_workflows_async(self, **kwargs: Any) -> list[SimpleNamespace]:
        self.calls.append(kwargs)
        return [SimpleNamespace(workflow_id=w) for w in self.workflow_ids]


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[TaskService]:
    engine = create_engine(database_url)
    bus = Broadcast("memory://")
    await bus.connect()
    log = EventLog(session_factory=create_session_factory(engine), broadcast=bus)
    yield TaskService(event_log=log, client=FakeQueue([]))  # type: ignore[arg-type]
    await bus.disconnect()
    await engine.dispose()


async def add(
    service: TaskService, owner: str, kind: TaskKind = TaskKind.GENERATE, *events: Event
) -> Task:
    async with service.session_factory() as session:
        task = await repository.create_task(
            session=session, request=REQUEST, kind=kind, teams=initial_teams(), owner=owner
        )
    if events:
        await service.event_log.append_many(task.id, list(events))
    return task


async def test_a_foreign_task_and_an_unknown_one_read_the_same(service: TaskService) -> None:
    mine = await add(service, ALICE.id)
    assert (await service.visible(mine.id, ALICE)).id == mine.id  # type: ignore[union-attr]
    assert (await service.visible(mine.id, ADMIN)).id == mine.id  # type: ignore[union-attr]
    assert await service.visible(mine.id, BOB) is None
    assert await service.visible("no-such-task", BOB) is None
    errors = []
    for task_id in (mine.id, "no-such-task"):
        with pytest.raises(TaskNotFoundError) as caught:
            await service.get(task_id, viewer=BOB)
        errors.append((type(caught.value), caught.value.args == (task_id,)))
    assert errors[0] == errors[1] == (TaskNotFoundError, True)
    assert (await service.get(mine.id)).owner == ALICE.id  # no viewer: the service's own read


async def test_task_pages_are_the_viewers_newest_first_with_filters(service: TaskService) -> None:
    alice = [await add(service, ALICE.id) for _ in range(3)]
    await add(service, ALICE.id, TaskKind.VERIFY)
    await add(service, BOB.id)
    first = await service.list_tasks(ALICE, limit=2, kind=TaskKind.GENERATE)
    newest = sorted(alice, key=lambda t: (t.created_at, t.id), reverse=True)
    assert [t.id for t in first.items] == [t.id for t in newest[:2]]
    assert first.has_next and first.total == 3
    last = first.items[-1]
    second = await service.list_tasks(
        ALICE, limit=2, after=(last.created_at, last.id), kind=TaskKind.GENERATE
    )
    assert [t.id for t in second.items] == [newest[2].id]
    assert not second.has_next and second.total == 3
    assert (await service.list_tasks(ALICE, limit=10)).total == 4
    assert (await service.list_tasks(BOB, limit=10)).total == 1
    assert (await service.list_tasks(ADMIN, limit=10)).total == 5
    assert (await service.list_tasks(ALICE, limit=10, status=TaskStatus.RUNNING)).total == 0


async def test_event_pages_need_a_visible_task(service: TaskService) -> None:
    said = [
        Event(EventKind.MESSAGE, f"m{n}", team=team, agent="x")
        for n, team in enumerate(["content_team", "verification_team"] * 3)
    ]
    task = await add(service, ALICE.id, TaskKind.GENERATE, *said)
    page = await service.list_agent_logs(task.id, ALICE, limit=4)
    assert [r.seq for r in page.items] == [1, 2, 3, 4] and page.has_next and page.total == 6
    rest = await service.list_agent_logs(task.id, ADMIN, limit=4, after_seq=4)
    assert [r.seq for r in rest.items] == [5, 6] and not rest.has_next
    content = await service.list_agent_logs(task.id, ALICE, limit=10, team="content_team")
    assert [r.message for r in content.items] == ["m0", "m2", "m4"] and content.total == 3
    for task_id in (task.id, "no-such-task"):
        with pytest.raises(TaskNotFoundError):
            await service.list_agent_logs(task_id, BOB, limit=10)


async def test_queued_count_is_the_owners_pending_generations(service: TaskService) -> None:
    await add(service, ALICE.id)
    await add(service, ALICE.id)
    await add(service, ALICE.id, TaskKind.VERIFY)
    await add(service, ALICE.id, TaskKind.GENERATE, Event.task_status(TaskStatus.RUNNING))
    await add(service, BOB.id)
    assert await service.queued_count(ALICE.id) == 2
    assert await service.queued_count(BOB.id) == 1
    assert await service.queued_count(ADMIN.id) == 0


async def test_the_queue_order_counts_a_retry_for_its_task(service: TaskService) -> None:
    queue = FakeQueue(["t1", "t2", "t1:retry-1", "t3:retry-2"])
    service.client = queue  # type: ignore[assignment]
    assert await service.queue_order() == {"t1": 1, "t2": 2, "t3": 4}
    assert await service.queue_position("t3") == 4
    assert await service.queue_position("t9") is None
    assert all(not c["sort_desc"] and c["status"] == ["ENQUEUED"] for c in queue.calls)
