"""Tasks on DBOS in one process, on a real SQLite file and a real PostgreSQL database:
queue, cancel, timeout, failures, retry from the checkpoint, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import openai
import pytest

from agents.llm.gate import ModelUnavailableError
from agents.runtime.tasks import TaskService, open_task_service
from agents.runtime.worker import WorkerConfig, run_worker
from db import repository
from db.event_log import EventLog, TaskClosedError
from db.models import AgentLog, PostRequest, Task
from tests.fakes import ScriptedChatModel, scripted

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(
    paper_title="Attention Is All You Need",
    additional_context="The Transformer relies on attention alone.",
    max_hashtags=3,
)
ModelFactory = Callable[[], ScriptedChatModel]


@contextlib.asynccontextmanager
async def worker_and_service(
    log: EventLog, database_url: str, factory: ModelFactory, **config: float | str
) -> AsyncIterator[TaskService]:
    settings = {"worker_id": "w1", "queue_poll": 0.05, "heartbeat": 0.2, **config}
    worker = WorkerConfig(database_url=database_url, **settings)  # type: ignore[arg-type]
    async with (
        open_task_service(database_url, log) as service,
        run_worker(worker, event_log=log, model_factory=factory),
    ):
        yield service


def gated(gate: threading.Event, inner: ScriptedChatModel | None = None) -> ScriptedChatModel:
    """The scripted model, but every call first waits for `gate` (in the worker thread)."""
    inner = inner or scripted()

    def handler(messages, tools):  # type: ignore[no-untyped-def]
        gate.wait(30)
        return inner.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=[])


async def events_of(log: EventLog, task_id: str) -> list[AgentLog]:
    async with log.session_factory() as session:
        return await repository.list_agent_logs(session=session, task_id=task_id, limit=1000)


async def wait_for(service: TaskService, task_id: str, *statuses: str) -> Task:
    async with asyncio.timeout(30):
        while (task := await service.get(task_id)).status not in statuses:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return task


def assert_clean_log(events: list[AgentLog], status: str) -> None:
    """Gapless seq, exactly one terminal event, the last, with `status`."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    ends = [
        e
        for e in events
        if e.kind == "TASK_STATUS" and e.data["status"] in ("COMPLETED", "FAILED", "CANCELLED")
    ]
    assert ends == [events[-1]] and ends[0].data["status"] == status


async def test_queue_limit_position_and_cancel_of_a_queued_task(
    log: EventLog, database_url: str
) -> None:
    gate = threading.Event()
    model = gated(gate)
    async with worker_and_service(
        log, database_url, lambda: model, global_concurrency=1, worker_concurrency=1
    ) as service:
        first = await service.create_generation(REQUEST)
        second = await service.create_generation(REQUEST)
        third = await service.create_generation(REQUEST)
        await wait_for(service, first.id, "RUNNING")
        await asyncio.sleep(0.3)
        assert (await service.get(second.id)).status == "PENDING"
        assert await service.queue_position(second.id) == 1
        assert await service.queue_position(third.id) == 2
        assert await service.queue_position(first.id) is None
        cancelled = await service.cancel(second.id)
        assert cancelled.status == "CANCELLED"
        assert await service.queue_position(third.id) == 1
        gate.set()
        for task in (first, third):
            assert (await wait_for(service, task.id, "COMPLETED")).content
            assert_clean_log(await events_of(log, task.id), "COMPLETED")
    events = await events_of(log, second.id)
    assert [(e.kind, e.data.get("status")) for e in events] == [
        ("TASK_QUEUED", None),
        ("TASK_STATUS", "CANCELLED"),
    ]  # never started
    assert events[0].data == {"position": 2}


async def test_cancel_a_running_task(log: EventLog, database_url: str) -> None:
    gate = threading.Event()
    model = gated(gate)
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REQUEST)
        await wait_for(service, task.id, "RUNNING")
        async with asyncio.timeout(1.0):
            cancelled = await service.cancel(task.id)
        gate.set()
        assert cancelled.status == "CANCELLED" and cancelled.completed_at
        with pytest.raises(TaskClosedError):
            await service.cancel(task.id)
    assert_clean_log(await events_of(log, task.id), "CANCELLED")


async def test_timeout_fails_the_task_with_a_code(log: EventLog, database_url: str) -> None:
    gate = threading.Event()
    model = gated(gate)
    async with worker_and_service(log, database_url, lambda: model, timeout=0.3) as service:
        task = await service.create_generation(REQUEST)
        failed = await wait_for(service, task.id, "FAILED")
        gate.set()
    assert failed.error_code == "TIMEOUT" and "0.3s" in (failed.error or "")
    assert_clean_log(await events_of(log, task.id), "FAILED")


async def test_a_failed_task_is_retried_from_its_checkpoint(
    log: EventLog, database_url: str
) -> None:
    inner, writer_calls = scripted(), []

    def flaky(messages, tools):  # type: ignore[no-untyped-def]
        if "LinkedInCreator" in str(messages[0].content):
            writer_calls.append(1)
            if len(writer_calls) == 1:  # the model endpoint goes away once
                raise openai.APIConnectionError(request=httpx.Request("POST", "http://model"))
        return inner.handler(messages, tools)

    model = ScriptedChatModel(handler=flaky, calls=[])
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REQUEST)
        failed = await wait_for(service, task.id, "FAILED")
        assert failed.error_code == "MODEL_UNAVAILABLE"
        retried = await service.retry(task.id)
        assert retried.status == "PENDING"
        done = await wait_for(service, task.id, "COMPLETED")
        with pytest.raises(TaskClosedError):
            await service.retry(task.id)
    assert done.attempt == 2 and done.content
    events = await events_of(log, task.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    started = [e.agent for e in events if e.kind == "AGENT_STARTED"]
    assert started.count("paper_researcher") == 1  # finished before the failure
    statuses = [e.data["status"] for e in events if e.kind == "TASK_STATUS"]
    assert statuses == ["RUNNING", "FAILED", "PENDING", "RUNNING", "COMPLETED"]
    second_start = [e for e in events if e.kind == "TASK_STATUS"][3]
    assert second_start.attempt == 2 and second_start.data["resumed_from"]


async def test_unexpected_errors_fail_and_the_worker_keeps_working(
    log: EventLog, database_url: str
) -> None:
    models: list[ModelFactory] = []

    def unavailable() -> ScriptedChatModel:
        raise ModelUnavailableError("the local model server exited with code -11")

    def broken(messages, tools):  # type: ignore[no-untyped-def]
        raise KeyError("surprise")

    models += [unavailable, lambda: ScriptedChatModel(handler=broken, calls=[]), scripted]
    async with worker_and_service(log, database_url, lambda: models[0]()) as service:
        task = await service.create_generation(REQUEST)
        failed = await wait_for(service, task.id, "FAILED")
        assert failed.error_code == "MODEL_UNAVAILABLE" and "-11" in (failed.error or "")
        models.pop(0)
        task = await service.create_generation(REQUEST)
        failed = await wait_for(service, task.id, "FAILED")
        # The bug's text stays in the log; the client gets a reference to the log line.
        assert failed.error_code == "INTERNAL_ERROR" and "surprise" not in (failed.error or "")
        assert re.search(r"reference [0-9a-f]{16}", failed.error or "")
        events = await events_of(log, task.id)
        assert_clean_log(events, "FAILED")
        assert any(e.kind == "AGENT_ERROR" for e in events)
        models.pop(0)
        task = await service.create_generation(REQUEST)
        assert (await wait_for(service, task.id, "COMPLETED", "FAILED")).status == "COMPLETED"


async def test_shutdown_never_fails_a_task_and_another_worker_resumes_it(
    log: EventLog, database_url: str
) -> None:
    gate = threading.Event()
    model = gated(gate)
    async with worker_and_service(log, database_url, lambda: model, shutdown_grace=0.2) as one:
        task = await one.create_generation(REQUEST)
        await wait_for(one, task.id, "RUNNING")
    stopped = await one.get(task.id)
    assert stopped.status == "RUNNING" and stopped.error is None  # not FAILED
    gate.set()
    async with worker_and_service(log, database_url, scripted, worker_id="w2") as two:
        done = await wait_for(two, task.id, "COMPLETED")
    assert done.attempt == 2 and done.worker_id == "w2"
    events = await events_of(log, task.id)
    assert_clean_log(events, "COMPLETED")
    assert [e.data["worker"] for e in events if e.kind == "TASK_RESUMED"] == ["w2"]


async def test_a_failed_event_append_still_ends_the_task_failed(
    log: EventLog, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The background writer's append fails once (the database was locked): the task must
    # end FAILED, not stay RUNNING with nobody to end it.
    import sqlalchemy.exc

    real = log.append_reading
    failed: list[int] = []

    async def fails_once(task_id: str, events: list, **kwargs: object) -> tuple:  # type: ignore[type-arg]
        if not failed and any(e.kind == "AGENT_STARTED" for e in events):
            failed.append(1)
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return await real(task_id, events, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(log, "append_reading", fails_once)
    model = scripted()
    async with worker_and_service(log, database_url, lambda: model) as service:
        task = await service.create_generation(REQUEST)
        ended = await wait_for(service, task.id, "FAILED", "COMPLETED")
    assert failed and ended.status == "FAILED" and ended.error_code == "INTERNAL_ERROR"
    assert_clean_log(await events_of(log, task.id), "FAILED")
