"""Durable execution of one task: a DBOS workflow whose single preemptible step runs the
LangGraph graph with a checkpointer.

- Workflow id = task id for the first run; a retry (`:retry-<n>`), a resume
  (`:resume-<id>`) and a review's REVISE (`:review-<id>`) each enqueue another, and the
  task records its current one (`Task.workflow_id`): a superseded workflow does nothing.
  LangGraph `thread_id` = task id, so a run that starts again (after a crash, a
  takeover, a retry, a pause or a review) resumes after the last node that finished.
- A run that stops for a person ends its workflow (the checkpoint keeps the interrupt);
  the answer it continues with is on the task row (`Task.pending_answer`), not in a
  workflow's input, so a pause, a retry or a crash before it is used loses nothing.
- Every step of the run is an `Event` in the event log, stamped with the attempt. The
  first attempt starts with TASK_STATUS RUNNING, a later one with TASK_RESUMED (attempt,
  worker, the nodes it resumes at). Exactly one terminal event is ever written: the
  event log refuses anything after one.
- DBOS registers workflows at import time and keeps one instance per process, so the
  per-process dependencies live in one `Executor` that `install()` sets.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import sqlalchemy.exc
import structlog
from dbos import DBOS
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agents.llm.calls import model_failure
from agents.llm.gate import ModelUnavailableError
from agents.llm.prices import PriceTable
from agents.runtime.appender import NOT_STARTABLE, Appender
from agents.runtime.observed import ObservedAppender
from agents.runtime.outcomes import completed_event, revision_state, stopped_event
from agents.teams import plan
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.teams.nodes import RunContext
from agents.teams.sources import SourcesConfig
from agents.teams.state import PostState, initial_state
from agents.telemetry.runs import RunObserver, model_name_of
from db import repository
from db.drafts import DRAFT_INTERVAL, DraftPublisher
from db.enums import EventKind, FailureCode, TaskKind, TaskStatus
from db.event_log import EventLog, TaskClosedError
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
    - `prices`: what the model's calls cost, stamped on each LLM_USAGE event as
      `cost_usd` (None: unknown, null; the bundled model is `agents.llm.prices.FREE`).
    - `cache`: LangGraph's node cache the generation graph is compiled with (None: no
      cache; `agents.runtime.node_cache`), scoped per run by the task's owner.
    - `running`: task id -> the asyncio task running it here.
    - `graphs`: each task kind's compiled graph, compiled on first use (`_graph`).
    - `draining`: set when shutdown begins; a run dequeued after it waits, unstarted,
      until shutdown stops it.
    - `closing`: set when shutdown stops runs; a run stopped then writes no event and
      is resumed later, here or by another worker.
    - `drafts`: publish the post as it is written (`db.drafts`, on the event log's bus),
      in chunks every `draft_interval` seconds; False: the writer's calls do not stream.
    """

    event_log: EventLog
    model_factory: ModelFactory
    checkpointer: BaseCheckpointSaver
    worker_id: str
    max_revisions: int = 2
    timeout: float = 900.0
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    prices: PriceTable | None = None
    cache: BaseCache | None = None
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    graphs: dict[TaskKind, CompiledStateGraph] = field(default_factory=dict)
    draining: bool = False
    closing: bool = False
    drafts: bool = True
    draft_interval: float = DRAFT_INTERVAL

    async def run(self, task_id: str, workflow_id: str | None = None) -> None:
        """Run (or resume) task `task_id` to its terminal event, or until it stops for a
        person (AWAITING_REVIEW, PAUSED). Left alone: a task that waits for a person,
        and one whose current workflow (`Task.workflow_id`) is not `workflow_id` (a
        superseded one: the task was paused while queued and resumed since; the start's
        write checks it again). A COMPLETED or CANCELLED task only has its checkpoint
        thread deleted (a review's APPROVE or REJECT enqueues that). Re-raises
        `CancelledError`."""
        current = asyncio.current_task()
        assert current is not None
        self.running[task_id] = current
        # Every log line of the run (the graph's tasks copy this context) names both.
        bound = structlog.contextvars.bind_contextvars(task_id=task_id, worker_id=self.worker_id)
        try:
            if self.draining:
                await asyncio.Future()  # never starts here: shutdown cancels it
            async with self.event_log.session_factory() as session:
                task = await repository.get_task(session=session, task_id=task_id)
            if task is None:
                return
            if task.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
                await self.checkpointer.adelete_thread(task_id)  # nothing can resume it
                return
            if not _startable(task, workflow_id):
                return
            await self._attempt(task, task.attempt + 1, workflow_id)
        finally:
            self.running.pop(task_id, None)
            structlog.contextvars.reset_contextvars(**bound)

    async def _attempt(self, task: Task, attempt: int, workflow_id: str | None) -> None:
        queued_at = task.updated_at if task.status == TaskStatus.PENDING else None
        observer = RunObserver(
            task.id, kind=task.kind, attempt=attempt, worker_id=self.worker_id, queued_at=queued_at
        )
        append = ObservedAppender(self.event_log, task.id, attempt, observer)
        try:
            graph = self._graph(task)
            resume_at: list[str] = []
            command: Command[Any] | None = None
            if task.status == TaskStatus.RUNNING or task.attempt > 0:  # may have a checkpoint
                checkpoint = await graph.aget_state(_config(task.id))
                resume_at = list(checkpoint.next)
                if checkpoint.interrupts:  # it stopped for a person: give the answer
                    command = Command(resume=task.pending_answer or {"kind": "resume"})
            await append.start(self._start_event(task, resume_at, attempt), workflow_id)
            async with asyncio.timeout(self.timeout):
                start = command if command is not None else await self._input(task, resume_at)
                out = await self._execute(
                    graph, task.id, start, append, owner=task.owner, attempt=attempt
                )
            if stops := out.get("__interrupt__"):
                # The task's own progress when the stop is inside a team (`out` is then
                # the meta graph's state before the team), so progress never goes back.
                progress = max(plan.progress(out), append.progress)
                await append.now(stopped_event(stops[0], out, progress=progress))
                return  # the checkpoint keeps the run; a decision or resume continues it
            draft = out.get("draft") or {}
            await append.now(
                completed_event(
                    reports=out.get("reports") or [],
                    revisions=out.get("revision", 0),
                    content=draft.get("content") or "",
                )
            )
            await self.checkpointer.adelete_thread(task.id)
        except asyncio.CancelledError:
            if not self.closing:
                await append.terminal(Event.task_status(TaskStatus.CANCELLED, "cancelled"))
            raise
        except TaskClosedError:
            pass  # cancelled elsewhere while running, or paused before it started
        except TimeoutError:
            message = f"the attempt ran longer than {self.timeout:g}s"
            await append.fail(FailureCode.TIMEOUT, message, retryable=True)
        except Exception as exc:
            await self._fail(task, append, exc)
        finally:
            observer.close()

    async def _fail(self, task: Task, append: Appender, exc: Exception) -> None:
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
            if kind == TaskKind.VERIFY:
                self.graphs[kind] = build_verification_graph(checkpointer=self.checkpointer)
            else:
                self.graphs[kind] = build_graph(checkpointer=self.checkpointer, cache=self.cache)
        return self.graphs[kind]

    def _start_event(self, task: Task, resumed_from: list[str], attempt: int) -> Event:
        """TASK_STATUS RUNNING for a fresh run, and for a run that continues after a
        person (a resume, a review's REVISE: "continues at <nodes>"); TASK_RESUMED naming
        the nodes it resumes at (`resumed_from`, from the checkpoint) when an earlier
        attempt stopped mid-run."""
        data = {"attempt": attempt, "worker": self.worker_id, "resumed_from": resumed_from}
        result = TaskResult(attempt=attempt, worker_id=self.worker_id)
        where = ", ".join(resumed_from) or "the start"
        if task.status == TaskStatus.RUNNING:  # an earlier attempt stopped mid-run
            message = f"attempt {attempt} on {self.worker_id} resumes at {where}"
            return Event(EventKind.TASK_RESUMED, message, data=data, result=result)
        message = f"continues at {where}" if resumed_from else "started"
        return Event.task_status(TaskStatus.RUNNING, message, data=data, result=result)

    async def _input(self, task: Task, resume_at: list[str]) -> PostState | None:
        """What the graph starts from: None (the checkpoint) when an earlier attempt
        stopped mid-run; for a fresh run the initial state of its request, of the
        post to check (VERIFY), or of the parent's post and the feedback (a follow-up
        revision, `outcomes.revision_state`)."""
        if resume_at:
            return None
        request = PostRequest.model_validate(task, from_attributes=True)
        answer = task.pending_answer or {}
        if task.parent_id is not None and answer.get("kind") == "revise":
            async with self.event_log.session_factory() as session:
                parent = await repository.get_task(session=session, task_id=task.parent_id)
            if parent is not None:
                feedback = str(answer.get("feedback") or "")
                return revision_state(parent, task, feedback, max_revisions=self.max_revisions)
        state = initial_state(request, max_revisions=self.max_revisions)
        if task.kind == TaskKind.VERIFY:
            state.update(draft={"content": task.content or "", "hashtags": []}, draft_round=0)
        return state

    async def _execute(
        self,
        graph: CompiledStateGraph,
        task_id: str,
        start: Any,
        append: Appender,
        *,
        owner: str = "",
        attempt: int = 1,
    ) -> dict[str, Any]:
        """Run `graph` from `start` (a state, None, or a `Command`) on the task's thread
        (a task of principal `owner`, the scope of its cached node results; attempt
        `attempt`); its output values (with `__interrupt__` when it stopped for a
        person)."""
        drafts = None
        if self.drafts:
            drafts = DraftPublisher(
                self.event_log.broadcast,
                task_id,
                attempt=attempt,
                progress=lambda: append.progress,
                interval=self.draft_interval,
            )
        model = self.model_factory()
        if isinstance(append, ObservedAppender):
            append.observer.model_name = model_name_of(model)
        context = RunContext(
            model=model,
            emit=append,
            flush=append.flush,
            sources=self.sources,
            pause_requested=append.pause_requested,
            prices=self.prices,
            cache_scope=owner,
            drafts=drafts,
        )
        return await graph.ainvoke(start, _config(task_id), context=context, durability="sync")


def _startable(task: Task, workflow_id: str | None) -> bool:
    """Whether a run of workflow `workflow_id` may start `task`: not terminal, not
    waiting for a person, and (for a task that records one) its current workflow."""
    status = TaskStatus(task.status)
    if status.is_terminal or status in NOT_STARTABLE:
        return False
    return workflow_id is None or task.workflow_id in (None, workflow_id)


def _config(task_id: str) -> RunnableConfig:
    return {"recursion_limit": RECURSION_LIMIT, "configurable": {"thread_id": task_id}}


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
    """The durable workflow of one run of a task: one step, the graph run until the task
    ends or stops for a person (`Executor.run`)."""
    await run_graph(task_id, DBOS.workflow_id)


@DBOS.step(name="postassist.run_graph", preemptible=True)
async def run_graph(task_id: str, workflow_id: str | None = None) -> None:
    """Run the graph of `task_id` on this process's executor. Preemptible: a DBOS cancel
    reaches the graph as `CancelledError`; a crash re-runs the step, and the checkpointer
    resumes the graph after the last finished node."""
    await installed().run(task_id, workflow_id)
