"""Runs tasks in the background and reports every step through the event log.

At most `max_concurrent` tasks run at once (the rest stay PENDING, queued on a
semaphore). Each run: TASK_STATUS RUNNING, the graph's events, then exactly one
terminal TASK_STATUS: COMPLETED, FAILED (with `error_code`) or CANCELLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents.graph import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.llm import ModelUnavailableError
from agents.reporting import RunContext
from agents.state import VERIFICATION_TEAM, initial_state, initial_teams
from db import repository
from db.engine import SessionFactory
from db.event_log import EventLog, TaskClosedError, TaskNotFoundError
from db.events import Event
from db.models import FailureCode, PostRequest, Task, TaskKind, TaskStatus, VerifyRequest

logger = logging.getLogger(__name__)

ModelFactory = Callable[[], BaseChatModel]


class Runner:
    """Background execution of generation and verification tasks.

    - `model_factory()` returns the chat model for one run; it may raise
      `ModelUnavailableError` (the task then fails with MODEL_UNAVAILABLE).
    - `max_concurrent`: tasks running at once (default 3, `MAX_CONCURRENT_GENERATIONS`).
    - `max_revisions`: times the meta-supervisor may send a post back (default 2).
    - `timeout`: seconds one task may run before it fails with TIMEOUT.
    """

    def __init__(
        self,
        *,
        event_log: EventLog,
        model_factory: ModelFactory,
        max_concurrent: int = 3,
        max_revisions: int = 2,
        timeout: float = 900.0,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.event_log = event_log
        self.model_factory = model_factory
        self.max_revisions = max_revisions
        self.timeout = timeout
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def session_factory(self) -> SessionFactory:
        """The event log's session factory."""
        return self.event_log.session_factory

    async def recover(self) -> int:
        """Deal with tasks a previous process left unfinished; return how many.

        RUNNING tasks fail with INTERRUPTED (no checkpoint to resume from); PENDING
        tasks are queued again.
        """
        async with self.session_factory() as session:
            stale = await repository.tasks_in_status(
                session=session, statuses=[TaskStatus.PENDING, TaskStatus.RUNNING]
            )
        for task in stale:
            if task.status == TaskStatus.RUNNING:
                await self._fail(
                    task.id, FailureCode.INTERRUPTED, "interrupted: the server restarted"
                )
            else:
                self.submit(task.id)
        return len(stale)

    async def create_generation(self, request: PostRequest) -> Task:
        """Store a PENDING generation task for `request`, queue it and return it."""
        async with self.session_factory() as session:
            task = await repository.create_task(
                session=session, request=request, kind=TaskKind.GENERATE, teams=initial_teams()
            )
        self.submit(task.id)
        return task

    async def run_verification(self, request: VerifyRequest) -> Task:
        """Run the Verification team alone on `request.content`; wait for it and return
        the finished task (its `verification_reports` hold the two reports)."""
        async with self.session_factory() as session:
            task = await repository.create_task(
                session=session,
                request=request,
                kind=TaskKind.VERIFY,
                teams=initial_teams(teams=(VERIFICATION_TEAM,)),
                content=request.content,
            )
        await asyncio.shield(self.submit(task.id))
        async with self.session_factory() as session:
            done = await repository.get_task(session=session, task_id=task.id)
        assert done is not None
        return done

    def submit(self, task_id: str) -> asyncio.Task[None]:
        """Queue the stored task `task_id` for execution; return its asyncio task."""
        job = asyncio.create_task(self._run(task_id), name=f"postassist-task-{task_id}")
        self._running[task_id] = job
        job.add_done_callback(lambda _: self._running.pop(task_id, None))
        return job

    async def cancel(self, task_id: str) -> Task:
        """Cancel a PENDING or RUNNING task and return it, CANCELLED.

        Raises `TaskNotFoundError` for an unknown id and `TaskClosedError` when the
        task already finished.
        """
        job = self._running.get(task_id)
        if job is not None:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        else:  # run by another process, or orphaned: record the cancellation here
            await self._append(task_id, Event.task_status(TaskStatus.CANCELLED, "cancelled"))
        async with self.session_factory() as session:
            task = await repository.get_task(session=session, task_id=task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        if task.status != TaskStatus.CANCELLED:
            raise TaskClosedError(f"task {task_id} already finished as {task.status}")
        return task

    async def shutdown(self) -> None:
        """Stop every run this process owns; they fail with INTERRUPTED."""
        self._closing = True
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # --- one run --------------------------------------------------------------------------

    async def _run(self, task_id: str) -> None:
        try:
            async with self._semaphore:
                async with self.session_factory() as session:
                    task = await repository.get_task(session=session, task_id=task_id)
                if task is None or TaskStatus(task.status).is_terminal:
                    return
                await self._append(task_id, Event.task_status(TaskStatus.RUNNING, "started"))
                async with asyncio.timeout(self.timeout):
                    summary = await self._execute(task)
                completed = Event.task_status(
                    TaskStatus.COMPLETED, "completed", data=summary, progress=1.0
                )
                await self._append(task_id, completed)
        except asyncio.CancelledError:
            if self._closing:
                await self._fail(
                    task_id, FailureCode.INTERRUPTED, "interrupted: the server shut down"
                )
            else:
                await self._append(task_id, Event.task_status(TaskStatus.CANCELLED, "cancelled"))
        except TimeoutError:
            message = f"the task ran longer than {self.timeout:g}s"
            await self._fail(task_id, FailureCode.TIMEOUT, message)
        except (ModelUnavailableError, openai.APIConnectionError, httpx.ConnectError) as exc:
            message = f"the model is unavailable: {exc}"
            await self._fail(task_id, FailureCode.MODEL_UNAVAILABLE, message)
        except TaskClosedError:
            pass  # cancelled elsewhere while running; the terminal event is written
        except Exception as exc:
            logger.exception("task %s failed", task_id)
            message = f"{type(exc).__name__}: {exc}"[:1000]
            await self._fail(task_id, FailureCode.INTERNAL_ERROR, message)

    async def _execute(self, task: Task) -> dict[str, Any]:
        request = PostRequest.model_validate(task, from_attributes=True)
        context = RunContext(model=self.model_factory(), emit=partial(self._append, task.id))
        config: RunnableConfig = {"recursion_limit": RECURSION_LIMIT}
        state = initial_state(request, max_revisions=self.max_revisions)
        if task.kind == TaskKind.VERIFY:
            state["draft"] = {"content": task.content or "", "hashtags": []}
            state["draft_round"] = 0
            graph = build_verification_graph()
        else:
            graph = build_graph()
        out = await graph.ainvoke(state, config, context=context)
        reports = out.get("reports") or []
        return {
            "approved": bool(reports) and all(r["approved"] for r in reports),
            "revisions": out.get("revision", 0),
            "characters": len((out.get("draft") or {}).get("content") or ""),
        }

    async def _append(self, task_id: str, event: Event) -> None:
        await self.event_log.append(task_id, event)

    async def _fail(self, task_id: str, code: FailureCode, message: str) -> None:
        event = Event.task_status(
            TaskStatus.FAILED,
            message,
            data={"error_code": code.value},
            result={"error": message, "error_code": code},
        )
        try:
            await self._append(task_id, event)
        except (TaskClosedError, TaskNotFoundError):
            pass
