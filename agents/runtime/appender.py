"""`Appender`: how one attempt of one task writes its events (buffered, several per
transaction, stamped with the attempt) and learns, for free, whether `pauseTask` asked
it to stop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from db.enums import FailureCode, TaskStatus
from db.event_log import EventLog, TaskClosedError, TaskNotFoundError
from db.events import Event, TaskResult

#: Statuses a run must not start on: the task was paused, or waits for a review,
#: after the workflow that would run it was dequeued.
NOT_STARTABLE = frozenset({TaskStatus.PAUSED, TaskStatus.AWAITING_REVIEW})


class Appender:
    """Writes the events of one attempt of one task, stamped with the attempt.

    Calling it (the graph's `emit`) only buffers the event: a background writer appends
    what is buffered, several events per transaction, while the graph goes on (the
    database is not on the path between two model calls). `flush()` waits until every
    buffered event is durable; every node flushes before it returns, so a checkpoint
    never gets ahead of its node's events. `now()` flushes, then appends one event.

    Each append returns the task row as it is after it (`EventLog.append_reading`), so
    `pause_requested()` knows from the last write whether `pauseTask` asked the run to
    stop, without a read of its own: a request that lands between the last write and a
    node boundary is seen at the next boundary.
    """

    def __init__(self, event_log: EventLog, task_id: str, attempt: int) -> None:
        self.event_log, self.task_id, self.attempt = event_log, task_id, attempt
        self._pending: list[Event] = []
        self._writer: asyncio.Task[None] | None = None
        self._error: Exception | None = None
        self._pause_requested = False
        #: The task's progress after the last write (0..1).
        self.progress = 0.0

    async def __call__(self, event: Event) -> None:
        if self._error is not None:
            raise self._error
        self._pending.append(replace(event, attempt=self.attempt))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=f"events-{self.task_id}")

    async def _append(
        self,
        events: list[Event],
        *,
        refuse: frozenset[TaskStatus] = frozenset(),
        workflow_id: str | None = None,
    ) -> None:
        _rows, task = await self.event_log.append_reading(
            self.task_id, events, refuse=refuse, workflow_id=workflow_id
        )
        self._pause_requested, self.progress = task.pause_requested, task.progress

    async def _drain(self) -> None:
        while self._pending and self._error is None:
            batch, self._pending = self._pending, []
            try:
                await self._append(batch)
            except Exception as exc:  # raised to the graph at its next emit or flush
                self._error = exc

    async def flush(self) -> None:
        """Wait until every buffered event is stored; re-raise a failed append's error
        (`TaskClosedError` when the task was cancelled elsewhere)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._error is not None:
            raise self._error

    async def pause_requested(self) -> bool:
        """Flush, then whether the task's row asked the run to pause when last written
        (`RunContext.pause_requested`)."""
        await self.flush()
        return self._pause_requested

    async def now(self, event: Event) -> None:
        """Flush, then append `event` at once."""
        await self.flush()
        await self._append([replace(event, attempt=self.attempt)])

    async def start(self, event: Event, workflow_id: str | None = None) -> None:
        """Append the attempt's first event, unless the task was paused or waits for a
        review meanwhile, or (with `workflow_id`) another workflow superseded this run's
        (`TaskStateConflictError`, a `TaskClosedError`: the run must not start). The
        check is in the write itself, so a pause and resume between the run's read of
        the task and this write cannot start two runs."""
        await self._append(
            [replace(event, attempt=self.attempt)], refuse=NOT_STARTABLE, workflow_id=workflow_id
        )

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
