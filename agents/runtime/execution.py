"""Durable execution of one task: a DBOS workflow whose single preemptible step runs the
LangGraph graph with a checkpointer.

- Workflow id = task id (a retry adds `:retry-<n>`); LangGraph `thread_id` = task id, so
  a run that starts again (after a crash, a takeover or a retry) resumes after the last
  node that finished.
- Every step of the run is an `Event` in the event log, stamped with the attempt. The
  first attempt starts with TASK_STATUS RUNNING, a later one with TASK_RESUMED (attempt,
  worker, the nodes it resumes at). Exactly one terminal event is ever written: the
  event log refuses anything after one.
- DBOS registers workflows at import time and keeps one instance per process, so the
  per-process dependencies live in one `Executor` that `install()` sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import openai
import sqlalchemy.exc
from dbos import DBOS
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agents.llm.calls import model_failure
from agents.llm.gate import ModelUnavailableError
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.teams.nodes import RunContext
from agents.teams.sources import SourcesConfig
from agents.teams.state import initial_state
from db import repository
from db.enums import EventKind, FailureCode, TaskKind, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskNotFoundError
from db.events import Event, TaskResult
from db.models import PostRequest, Task

logger = logging.getLogger(__name__)

#: Makes the chat model of one run (`Executor.model_factory`; `graph.app` passes its own).
ModelFactory = Callable[[], BaseChatModel]
#: The DBOS queue every task is enqueued on.
QUEUE_NAME = "postassist_tasks"
#: Errors that mean the model endpoint cannot be reached (the task may be retried).
MODEL_ERRORS = (ModelUnavailableError, openai.APIConnectionError, httpx.ConnectError)


@dataclass
class Executor:
    """Runs tasks in this process: what a workflow step needs, set once per process.

    - `model_factory()` returns the chat model for one run; it may raise
      `ModelUnavailableError` (the task then fails with MODEL_UNAVAILABLE).
    - `max_revisions`: times the meta-supervisor may send a post back.
    - `timeout`: seconds one attempt may run before the task fails with TIMEOUT.
    - `sources`: where research may fetch real sources (the default fetches nothing).
    - `running`: task id -> the asyncio task running it here.
    - `graphs`: each task kind's compiled graph, compiled on first use (`_graph`).
    - `draining`: set when shutdown begins; a run dequeued after it waits, unstarted,
      until shutdown stops it.
    - `closing`: set when shutdown stops runs; a run stopped then writes no event and
      is resumed later, here or by another worker.
    """

    event_log: EventLog
    model_factory: ModelFactory
    checkpointer: BaseCheckpointSaver
    worker_id: str
    max_revisions: int = 2
    timeout: float = 900.0
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    graphs: dict[TaskKind, CompiledStateGraph] = field(default_factory=dict)
    draining: bool = False
    closing: bool = False

    async def run(self, task_id: str) -> None:
        """Run (or resume) task `task_id` to its terminal event; a task that is already
        terminal is left alone. Re-raises `CancelledError`."""
        current = asyncio.current_task()
        assert current is not None
        self.running[task_id] = current
        try:
            if self.draining:
                await asyncio.Future()  # never starts here: shutdown cancels it
            async with self.event_log.session_factory() as session:
                task = await repository.get_task(session=session, task_id=task_id)
            if task is None or TaskStatus(task.status).is_terminal:
                return
            await self._attempt(task, task.attempt + 1)
        finally:
            self.running.pop(task_id, None)

    async def _attempt(self, task: Task, attempt: int) -> None:
        append = _Appender(self.event_log, task.id, attempt)
        try:
            graph = self._graph(task)
            resume_at: list[str] = []
            if task.status == TaskStatus.RUNNING or task.attempt > 0:  # may have a checkpoint
                resume_at = list((await graph.aget_state(_config(task.id))).next)
            await append.now(self._start_event(task, resume_at, attempt))
            async with asyncio.timeout(self.timeout):
                summary = await self._execute(task, graph, append, resume=bool(resume_at))
            outcome = TaskResult(
                approved=summary["approved"], open_issues=summary.pop("open_issues")
            )
            completed = Event.task_status(
                TaskStatus.COMPLETED, data=summary, progress=1.0, result=outcome
            )
            await append.now(completed)
            await self.checkpointer.adelete_thread(task.id)
        except asyncio.CancelledError:
            if not self.closing:
                await append.terminal(Event.task_status(TaskStatus.CANCELLED, "cancelled"))
            raise
        except TaskClosedError:
            pass  # cancelled elsewhere while running; the terminal event is written
        except TimeoutError:
            message = f"the attempt ran longer than {self.timeout:g}s"
            await append.fail(FailureCode.TIMEOUT, message, retryable=True)
        except Exception as exc:
            await self._fail(task, append, exc)

    async def _fail(self, task: Task, append: _Appender, exc: Exception) -> None:
        """End the task FAILED for `exc`: MODEL_ERROR for the provider's errors (5xx,
        429, timeouts; the provider's own text only in this log), MODEL_UNAVAILABLE when
        the endpoint cannot be reached, INTERNAL_ERROR otherwise (a database error's text,
        which may carry SQL, and a bug's message only in this log: the client gets the
        exception type, or a reference to the log line)."""
        if (failure := model_failure(exc)) is not None:
            message, retryable = failure
            logger.warning("task %s: model error: %s: %s", task.id, type(exc).__name__, exc)
            await append.fail(FailureCode.MODEL_ERROR, message, retryable=retryable)
        elif isinstance(exc, MODEL_ERRORS):
            message = f"the model is unavailable: {exc}"
            if not isinstance(exc, ModelUnavailableError):  # the client's text, not ours
                logger.warning("task %s: model unreachable: %s", task.id, exc)
                message = f"the model is unavailable ({type(exc).__name__})"
            await append.fail(FailureCode.MODEL_UNAVAILABLE, message, retryable=True)
        elif isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
            logger.exception("task %s failed on the database", task.id)
            message = f"a database error stopped the task ({type(exc).__name__})"
            await append.fail(FailureCode.INTERNAL_ERROR, message, retryable=True)
        else:
            reference = uuid.uuid4().hex[:16]
            logger.exception("task %s failed (reference %s)", task.id, reference)
            message = f"an internal error stopped the task (reference {reference} in the log)"
            await append.fail(FailureCode.INTERNAL_ERROR, message, retryable=False)

    def _graph(self, task: Task) -> CompiledStateGraph:
        """The compiled graph of `task`'s kind, compiled once per executor: a compiled
        graph holds no run's data (each run's model and event sink come from its runtime
        context, its state from the checkpointer by thread id), so every run shares it
        (compiling `build_graph` holds the GIL about 8 ms on a 2-core machine)."""
        kind = TaskKind(task.kind)
        if kind not in self.graphs:
            build = build_verification_graph if kind == TaskKind.VERIFY else build_graph
            self.graphs[kind] = build(checkpointer=self.checkpointer)
        return self.graphs[kind]

    def _start_event(self, task: Task, resumed_from: list[str], attempt: int) -> Event:
        """TASK_STATUS RUNNING for a fresh run; TASK_RESUMED naming the nodes it resumes at
        (`resumed_from`, from the checkpoint) when an earlier attempt stopped mid-run."""
        data = {"attempt": attempt, "worker": self.worker_id, "resumed_from": resumed_from}
        result = TaskResult(attempt=attempt, worker_id=self.worker_id)
        if task.status == TaskStatus.RUNNING:  # an earlier attempt stopped mid-run
            where = ", ".join(resumed_from) or "the start"
            message = f"attempt {attempt} on {self.worker_id} resumes at {where}"
            return Event(EventKind.TASK_RESUMED, message, data=data, result=result)
        return Event.task_status(TaskStatus.RUNNING, "started", data=data, result=result)

    async def _execute(
        self, task: Task, graph: CompiledStateGraph, append: _Appender, *, resume: bool
    ) -> dict[str, Any]:
        config = _config(task.id)
        state: Any = None  # resume after the last finished node
        if not resume:
            request = PostRequest.model_validate(task, from_attributes=True)
            state = initial_state(request, max_revisions=self.max_revisions)
            if task.kind == TaskKind.VERIFY:
                state.update(draft={"content": task.content or "", "hashtags": []}, draft_round=0)
        context = RunContext(
            model=self.model_factory(), emit=append, flush=append.flush, sources=self.sources
        )
        out = await graph.ainvoke(state, config, context=context, durability="sync")
        reports = out.get("reports") or []
        rejected = [r for r in reports if not r["approved"]]
        return {
            "approved": bool(reports) and not rejected,
            "open_issues": [issue for r in rejected for issue in r["issues"]],
            "revisions": out.get("revision", 0),
            "characters": len((out.get("draft") or {}).get("content") or ""),
        }


def _config(task_id: str) -> RunnableConfig:
    return {"recursion_limit": RECURSION_LIMIT, "configurable": {"thread_id": task_id}}


class _Appender:
    """Writes the events of one attempt of one task, stamped with the attempt.

    Calling it (the graph's `emit`) only buffers the event: a background writer appends
    what is buffered, several events per transaction, while the graph goes on (the
    database is not on the path between two model calls). `flush()` waits until every
    buffered event is durable; every node flushes before it returns, so a checkpoint
    never gets ahead of its node's events. `now()` flushes, then appends one event.
    """

    def __init__(self, event_log: EventLog, task_id: str, attempt: int) -> None:
        self.event_log, self.task_id, self.attempt = event_log, task_id, attempt
        self._pending: list[Event] = []
        self._writer: asyncio.Task[None] | None = None
        self._error: Exception | None = None

    async def __call__(self, event: Event) -> None:
        if self._error is not None:
            raise self._error
        self._pending.append(replace(event, attempt=self.attempt))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=f"events-{self.task_id}")

    async def _drain(self) -> None:
        while self._pending and self._error is None:
            batch, self._pending = self._pending, []
            try:
                await self.event_log.append_many(self.task_id, batch)
            except Exception as exc:  # raised to the graph at its next emit or flush
                self._error = exc

    async def flush(self) -> None:
        """Wait until every buffered event is stored; re-raise a failed append's error
        (`TaskClosedError` when the task was cancelled elsewhere)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._error is not None:
            raise self._error

    async def now(self, event: Event) -> None:
        """Flush, then append `event` at once."""
        await self.flush()
        await self.event_log.append(self.task_id, replace(event, attempt=self.attempt))

    async def terminal(self, event: Event) -> None:
        """Append a terminal event unless the task already has one. A buffered append
        that failed (it wrote nothing: its events took no `seq`) does not stop it, or
        the task would stay RUNNING with no worker for ever: its error is dropped here
        (`_fail` logged it) and the terminal event is appended on its own."""
        with contextlib.suppress(Exception):
            await self.flush()
        if isinstance(self._error, TaskClosedError | TaskNotFoundError):
            return  # the task already ended elsewhere
        self._error = None
        try:
            await self.event_log.append(self.task_id, replace(event, attempt=self.attempt))
        except (TaskClosedError, TaskNotFoundError):
            pass

    async def fail(self, code: FailureCode, message: str, *, retryable: bool) -> None:
        """End the task FAILED with `code` (kept for a retry from its checkpoint);
        `retryable` (in the event's data) says whether `retryTask` may help."""
        await self.terminal(
            Event.task_status(
                TaskStatus.FAILED,
                message,
                data={"error_code": code.value, "retryable": retryable},
                result=TaskResult(error=message, error_code=code),
            )
        )


_executor: Executor | None = None


def install(executor: Executor | None) -> None:
    """Make `executor` run this process's workflows (None: stop)."""
    global _executor
    _executor = executor


def installed() -> Executor:
    """The executor `install` set; `RuntimeError` when this process runs no worker."""
    if _executor is None:
        raise RuntimeError("no PostAssist worker runs in this process")
    return _executor


@DBOS.workflow(name="postassist.run_task")
async def run_task(task_id: str) -> None:
    """The durable workflow of one task: one step, the whole graph run."""
    await run_graph(task_id)


@DBOS.step(name="postassist.run_graph", preemptible=True)
async def run_graph(task_id: str) -> None:
    """Run the graph of `task_id` on this process's executor. Preemptible: a DBOS cancel
    reaches the graph as `CancelledError`; a crash re-runs the step, and the checkpointer
    resumes the graph after the last finished node."""
    await installed().run(task_id)
