"""`ObservedAppender`: the `Appender` of one attempt that shows each event to the
attempt's `RunObserver` (metrics and spans, `agents.telemetry.runs`) as it is emitted."""

from __future__ import annotations

from agents.runtime.appender import Appender
from agents.telemetry.runs import RunObserver
from db.event_log import EventLog
from db.events import Event


class ObservedAppender(Appender):
    """An `Appender` that calls `observer.observe(event)` for every event of the
    attempt: a graph's event when it is emitted (before it is buffered, so a span starts
    and ends when the agent said), the start, `now` and terminal events once written."""

    def __init__(
        self, event_log: EventLog, task_id: str, attempt: int, observer: RunObserver
    ) -> None:
        super().__init__(event_log, task_id, attempt)
        self.observer = observer

    async def __call__(self, event: Event) -> None:
        self.observer.observe(event)
        await super().__call__(event)

    async def start(self, event: Event, workflow_id: str | None = None) -> None:
        """`Appender.start`, then observed (a refused start is not a pick-up)."""
        await super().start(event, workflow_id)
        self.observer.observe(event)

    async def now(self, event: Event) -> None:
        """`Appender.now`, then observed."""
        await super().now(event)
        self.observer.observe(event)

    async def terminal(self, event: Event) -> None:
        """`Appender.terminal`, observed (the task may have ended elsewhere meanwhile:
        the outcome is then this attempt's view of it)."""
        await super().terminal(event)
        self.observer.observe(event)
