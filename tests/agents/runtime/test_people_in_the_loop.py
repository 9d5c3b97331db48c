"""People in the loop on the task service and a real worker (SQLite file, PostgreSQL):
pause and resume at node boundaries, a paused task's freed slot, follow-up revisions
that reuse the research, and review decisions answered once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agents.runtime import execution
from db.enums import ReviewDecision, ReviewMode, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskStateConflictError
from db.models import PostRequest, Task
from tests.agents.runtime.test_execution import (
    REQUEST,
    assert_clean_log,
    events_of,
    gated,
    wait_for,
    worker_and_service,
)
from tests.fakes import ScriptedChatModel, scripted, system_text

pytestmark = pytest.mark.anyio

REVIEWED = PostRequest.model_validate({**REQUEST.model_dump(), "review": ReviewMode.ALWAYS})


def research_calls(model: ScriptedChatModel) -> int:
    return sum("PaperResearcher" in system_text(c["messages"]) for c in model.calls)


async def thread_deleted(task_id: str) -> None:
    """Wait until the worker's checkpointer holds no thread of `task_id`."""
    config = {"configurable": {"thread_id": task_id}}
    async with asyncio.timeout(10):
        while await execution.installed().checkpointer.aget_tuple(config) is not None:  # type: ignore[arg-type]  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def stepping(gate: threading.Semaphore, inner: ScriptedChatModel) -> ScriptedChatModel:
    """The scripted model, but each call takes one permit of `gate` first (in the
    worker's thread): the test lets the run go one model call at a time."""

    def handler(messages, tools):  # type: ignore[no-untyped-def]
        assert gate.acquire(timeout=30), "the test never let this call through"
        return inner.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=inner.calls)


async def test_a_running_task_pauses_at_a_node_boundary_and_resumes_where_it_stopped(
    log: EventLog, database_url: str
) -> None:
    permits = threading.Semaphore(0)
    inner = scripted()
    model = stepping(permits, inner)
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REQUEST)
        await wait_for(service, task.id, "RUNNING")
        requested = await service.pause(task.id)
        assert requested.status == "RUNNING" and requested.pause_requested
        assert (await service.pause(task.id)).pause_requested  # a second pause: the same
        for _ in range(200):  # let it run to the next boundary, one model call at a time
            permits.release()
            if (await service.get(task.id)).status == "PAUSED":
                break
            await asyncio.sleep(0.02)
        paused = await wait_for(service, task.id, "PAUSED")
        assert not paused.pause_requested and paused.current_agent is None
        so_far = await events_of(log, task.id)
        assert so_far[-1].progress >= max(e.progress for e in so_far[:-1])  # never back
        calls = len(inner.calls)
        await asyncio.sleep(0.3)
        assert len(inner.calls) == calls  # nothing runs while it is paused
        with pytest.raises(TaskStateConflictError):
            await service.review(task.id, ReviewDecision.APPROVE, reviewer="local")
        resumed = await service.resume(task.id)
        assert resumed.status in ("PENDING", "RUNNING")
        with pytest.raises(TaskStateConflictError):
            await service.resume(task.id)  # only a PAUSED task resumes
        permits.release(1000)
        done = await wait_for(service, task.id, "COMPLETED")
    assert done.content and done.attempt == 2
    events = await events_of(log, task.id)
    assert_clean_log(events, "COMPLETED")
    statuses = [e.data["status"] for e in events if e.kind == "TASK_STATUS"]
    assert statuses == ["RUNNING", "PAUSED", "PENDING", "RUNNING", "COMPLETED"]
    assert [e.kind for e in events].count("PAUSE_REQUESTED") == 1
    started = [e.agent for e in events if e.kind == "AGENT_STARTED"]
    assert started.count("paper_researcher") == 1  # the finished work was not redone


async def test_a_paused_task_frees_its_slot_and_a_queued_one_holds_its_place(
    log: EventLog, database_url: str
) -> None:
    permits = threading.Semaphore(0)
    model = stepping(permits, scripted())
    single = {"global_concurrency": 1, "worker_concurrency": 1}
    async with worker_and_service(log, database_url, lambda: model, **single) as service:
        first = await service.create_generation(REQUEST)
        await wait_for(service, first.id, "RUNNING")
        second = await service.create_generation(REQUEST)
        held = await service.create_generation(REQUEST)
        assert (await service.pause(held.id)).status == "PAUSED"  # held while queued
        await service.pause(first.id)
        permits.release(5)
        await wait_for(service, first.id, "PAUSED")
        permits.release(1000)
        await wait_for(service, second.id, "COMPLETED")  # it got the freed slot
        await asyncio.sleep(0.3)
        assert (await service.get(held.id)).status == "PAUSED"
        assert (await service.get(first.id)).status == "PAUSED"
        for task in (first, held):
            await service.resume(task.id)
        for task in (first, held):
            assert (await wait_for(service, task.id, "COMPLETED")).content
            assert_clean_log(await events_of(log, task.id), "COMPLETED")
        cancelled = await service.create_generation(REQUEST)
        await service.pause(cancelled.id)
        assert (await service.cancel(cancelled.id)).status == "CANCELLED"  # cancel a paused one
    held_statuses = [
        e.data["status"] for e in await events_of(log, held.id) if e.kind == "TASK_STATUS"
    ]
    assert held_statuses == ["PAUSED", "PENDING", "RUNNING", "COMPLETED"]


async def test_review_decisions_are_taken_once_for_the_revision_awaiting_review(
    log: EventLog, database_url: str
) -> None:
    model = scripted()
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REVIEWED)
        waiting = await wait_for(service, task.id, "AWAITING_REVIEW", "COMPLETED")
        assert waiting.status == "AWAITING_REVIEW" and waiting.revisions == 0
        with pytest.raises(TaskStateConflictError):
            await service.review(task.id, ReviewDecision.APPROVE, reviewer="a", expected_revision=1)
        revised = await service.review(
            task.id, ReviewDecision.REVISE, reviewer="a", feedback="Shorter, please."
        )
        assert revised.status in ("PENDING", "RUNNING")
        again = await wait_for(service, task.id, "AWAITING_REVIEW")
        assert again.revisions == 1
        both = await asyncio.gather(
            service.review(task.id, ReviewDecision.APPROVE, reviewer="a", expected_revision=1),
            service.review(task.id, ReviewDecision.APPROVE, reviewer="b", expected_revision=1),
            return_exceptions=True,
        )
        # one is written; the other finds it COMPLETED (or still awaiting, then changed)
        assert sum(isinstance(r, TaskClosedError) for r in both) == 1, both
        with pytest.raises(TaskClosedError):
            await service.review(task.id, ReviewDecision.REJECT, reviewer="a")
        await thread_deleted(task.id)  # the approval's clean-up workflow ran
    events = await events_of(log, task.id)
    assert_clean_log(events, "COMPLETED")
    decisions = [e.data["decision"] for e in events if e.kind == "REVIEW_DECISION"]
    assert decisions == ["REVISE", "APPROVE"]
    assert research_calls(model) == 1  # the revision only rewrote the post


async def test_a_follow_up_revision_reuses_the_research_and_links_the_chain(
    log: EventLog, database_url: str
) -> None:
    model = scripted()
    async with worker_and_service(log, database_url, lambda: model) as service:
        first = await service.create_generation(REQUEST)
        first = await wait_for(service, first.id, "COMPLETED")
        assert research_calls(model) == 1 and first.content
        with pytest.raises(ValueError, match="feedback"):
            await service.revise_post(first.id, "  ")
        calls = len(model.calls)
        child = await service.revise_post(first.id, "Mention the dataset.")
        assert child.parent_id == first.id and child.revision_of == first.id
        done = await wait_for(service, child.id, "COMPLETED", "FAILED")
        assert done.status == "COMPLETED" and done.content and done.revisions == 1
        assert research_calls(model) == 1  # no research call for the revision
        prompts = [str(c["messages"][-1].content) for c in model.calls[calls:]]
        assert any("Mention the dataset." in p and first.content[:40] in p for p in prompts)
        grandchild = await service.revise_post(child.id, "Even shorter.")
        assert grandchild.parent_id == child.id and grandchild.revision_of == first.id
        await wait_for(service, grandchild.id, "COMPLETED")
        chain = await service.history(child.id)
        assert [t.id for t in chain] == [first.id, child.id, grandchild.id]
        with pytest.raises(TaskStateConflictError):
            pending = await service.create_generation(REQUEST)
            await service.revise_post(pending.id, "too early")


async def test_an_unanswered_review_times_out_and_a_retry_asks_again(
    log: EventLog, database_url: str
) -> None:
    model = scripted()
    async with worker_and_service(log, database_url, lambda: model, review_timeout=0.5) as service:
        task = await service.create_generation(REVIEWED)
        await wait_for(service, task.id, "AWAITING_REVIEW")
        failed = await wait_for(service, task.id, "FAILED")
        assert failed.error_code == "REVIEW_TIMEOUT"
        await service.retry(task.id)
        again = await wait_for(service, task.id, "AWAITING_REVIEW", "COMPLETED")
        assert again.status == "AWAITING_REVIEW"  # the retry waits for a person again
        done = await service.review(task.id, ReviewDecision.APPROVE, reviewer="a")
        assert done.status == "COMPLETED"
    events = await events_of(log, task.id)
    statuses = [e.data["status"] for e in events if e.kind == "TASK_STATUS"]
    assert statuses == [
        "RUNNING", "AWAITING_REVIEW", "FAILED", "PENDING", "RUNNING", "AWAITING_REVIEW",
        "COMPLETED",
    ]  # fmt: skip
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


SINGLE = {"global_concurrency": 1, "worker_concurrency": 1}


async def test_a_follow_up_paused_in_the_queue_keeps_its_feedback(
    log: EventLog, database_url: str
) -> None:
    gate = threading.Event()
    gate.set()
    model = gated(gate)
    async with worker_and_service(log, database_url, lambda: model, **SINGLE) as service:
        first = await wait_for(service, (await service.create_generation(REQUEST)).id, "COMPLETED")
        gate.clear()
        blocker = await service.create_generation(REQUEST)  # holds the only slot
        await wait_for(service, blocker.id, "RUNNING")
        child = await service.revise_post(first.id, "Mention the dataset XYZZY.")
        assert (await service.pause(child.id)).status == "PAUSED"
        await service.resume(child.id)  # its first workflow is superseded
        calls = len(model.calls)
        gate.set()
        done = await wait_for(service, child.id, "COMPLETED", "FAILED")
    prompts = [str(c["messages"][-1].content) for c in model.calls[calls:]]
    assert done.status == "COMPLETED" and done.revisions == 1
    assert any("XYZZY" in p for p in prompts)  # the feedback waited on the row
    assert research_calls(model) == 1 and done.pending_answer is None


async def test_a_revise_paused_in_the_queue_is_still_applied_once(
    log: EventLog, database_url: str
) -> None:
    gate = threading.Event()
    gate.set()
    model = gated(gate)
    async with worker_and_service(log, database_url, lambda: model, **SINGLE) as service:
        task = await service.create_generation(REVIEWED)
        await wait_for(service, task.id, "AWAITING_REVIEW")
        gate.clear()
        blocker = await service.create_generation(REQUEST)
        await wait_for(service, blocker.id, "RUNNING")
        await service.review(task.id, ReviewDecision.REVISE, reviewer="a", feedback="PLUGH")
        assert (await service.pause(task.id)).status == "PAUSED"
        assert (await service.get(task.id)).pending_answer["feedback"] == "PLUGH"
        await service.resume(task.id)
        gate.set()
        again = await wait_for(service, task.id, "AWAITING_REVIEW", "COMPLETED", "FAILED")
        assert again.status == "AWAITING_REVIEW" and again.revisions == 1, again
        assert again.pending_answer is None
        # a second REVISE gets a workflow of its own (DBOS ids are idempotency keys)
        await service.review(task.id, ReviewDecision.REVISE, reviewer="a", feedback="more")
        third = await wait_for(service, task.id, "AWAITING_REVIEW", "FAILED")
        assert third.revisions == 2
        await service.review(task.id, ReviewDecision.APPROVE, reviewer="a", expected_revision=2)
    events = await events_of(log, task.id)
    assert_clean_log(events, "COMPLETED")
    feedback = [e.data["feedback"] for e in events if e.kind == "MESSAGE" and "feedback" in e.data]
    assert feedback == ["PLUGH", "more"]  # each answer applied once, in order


async def test_an_answer_to_another_revision_is_not_applied_after_a_crash(
    log: EventLog, database_url: str
) -> None:
    model = scripted()
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REVIEWED)
        await wait_for(service, task.id, "AWAITING_REVIEW")
        await service.review(task.id, ReviewDecision.REVISE, reviewer="a", feedback="STALE")
        waiting = await wait_for(service, task.id, "AWAITING_REVIEW")
        await asyncio.sleep(0.3)
        waiting = await service.get(task.id)
        assert waiting.revisions == 1
        # The crash window: the run stopped at revision 1's review, but died before its
        # AWAITING_REVIEW was written; the row still holds revision 0's answer.
        stale = {"decision": "REVISE", "feedback": "STALE", "reviewer": "a", "revision": 0}
        async with log.session_factory() as session:
            row = await session.get(Task, task.id)
            assert row is not None
            row.status, row.pending_answer = TaskStatus.RUNNING, stale
            session.add(row)
            await session.commit()
        await execution.installed().run(task.id, waiting.workflow_id)  # DBOS's re-run
        after = await service.get(task.id)
    assert after.status == "AWAITING_REVIEW" and after.revisions == 1  # asked again, not revised
