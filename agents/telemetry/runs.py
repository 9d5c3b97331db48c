"""`RunObserver`: one attempt of one task, seen through its events as they are emitted.

It records the attempt's metrics (`agents.telemetry.metrics`: the run's duration and
outcome, the queue's pick-up latency, each agent's duration, each model call's latency
and tokens) and, when a tracer is installed (`agents.telemetry.tracing`), its spans:

    postassist.task                      the attempt (task id, kind, attempt, worker)
    ├── team <team>                      TEAM_STARTED .. TEAM_FINISHED
    │   └── invoke_agent <agent>         AGENT_STARTED .. AGENT_FINISHED / AGENT_ERROR
    │       └── chat <model>             LLM_CALL .. LLM_USAGE (gen_ai.usage.*_tokens)
    └── ...

Spans follow the events, not Python's call stack, so an agent whose start and finish
are separate graph nodes (the researcher's cache) is one span, and no span depends on
asyncio's context crossing LangGraph's tasks. An event costs one dict lookup when it is
of no interest; over an agent's typical events ~9 us each with tracing off and ~70 us
with it on (`python -m benchmarks.telemetry`), against a model call of seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from agents.telemetry import metrics
from agents.telemetry.tracing import child_context, tracer
from db.enums import EventKind, TaskStatus
from db.events import Event

#: The `outcome` label of a run that ended with this TASK_STATUS.
_OUTCOMES = {
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.AWAITING_REVIEW: "stopped",
    TaskStatus.PAUSED: "stopped",
}


class RunObserver:
    """Metrics and spans of one attempt (see the module). `queued_at` is when the task
    last changed while PENDING (None: it was not queued, e.g. a crashed run resumed);
    `model_name` is the chat model's name for the spans (`gen_ai.request.model`), set
    once the run's model is built. `observe(event)` for each event, in emit order;
    `close()` once, when the attempt is over (ends what is still open)."""

    def __init__(
        self,
        task_id: str,
        *,
        kind: str,
        attempt: int,
        worker_id: str,
        queued_at: datetime | None = None,
    ) -> None:
        self.kind, self.queued_at = kind, queued_at
        self.model_name: str | None = None
        self.outcome = "interrupted"
        self._started = time.monotonic()
        self._agents: dict[tuple[str | None, str | None], tuple[float, Any]] = {}
        self._teams: dict[str | None, Any] = {}
        self._calls: dict[tuple[str | None, str | None], Any] = {}
        self._tracer = tracer()
        self._root = None
        if self._tracer is not None:
            self._root = self._tracer.start_span(
                "postassist.task",
                attributes={
                    "postassist.task.id": task_id,
                    "postassist.task.kind": kind,
                    "postassist.task.attempt": attempt,
                    "postassist.worker.id": worker_id,
                },
            )

    def observe(self, event: Event) -> None:
        """Record what `event` starts or ends (see the module); others are ignored."""
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event)

    def close(self) -> None:
        """Observe the attempt's duration with its outcome and end every open span
        (the root last, with an error status unless the run completed or stopped)."""
        seconds = time.monotonic() - self._started
        metrics.TASK_RUN_SECONDS.labels(self.kind, self.outcome).observe(seconds)
        if self._tracer is None:
            return
        for span in [*self._calls.values(), *(s for _, s in self._agents.values())]:
            span.end()
        for span in self._teams.values():
            span.end()
        self._calls.clear()
        self._agents.clear()
        self._teams.clear()
        assert self._root is not None
        self._root.set_attribute("postassist.task.outcome", self.outcome)
        if self.outcome not in ("completed", "stopped"):
            _mark_error(self._root, self.outcome)
        self._root.end()

    # -- the events of interest --------------------------------------------------------

    def _status(self, event: Event) -> None:
        status = event.status
        if status == TaskStatus.RUNNING:
            self._picked_up()
        elif status in _OUTCOMES:
            self.outcome = _OUTCOMES[status]
            if self._root is not None and status == TaskStatus.FAILED:
                self._root.set_attribute("error.type", str(event.data.get("error_code")))

    def _picked_up(self) -> None:
        if self.queued_at is None:
            return
        queued = self.queued_at
        if queued.tzinfo is None:
            queued = queued.replace(tzinfo=UTC)
        waited = max(0.0, (datetime.now(UTC) - queued).total_seconds())
        metrics.TASK_PICKUP_SECONDS.labels(self.kind).observe(waited)
        self.queued_at = None

    def _team_started(self, event: Event) -> None:
        if self._tracer is not None:
            self._end(self._teams.pop(event.team, None))
            self._teams[event.team] = self._tracer.start_span(
                f"team {event.team}",
                context=child_context(self._root),
                attributes={"postassist.team": str(event.team)},
            )

    def _team_finished(self, event: Event) -> None:
        self._end(self._teams.pop(event.team, None))

    def _agent_started(self, event: Event) -> None:
        span = None
        if self._tracer is not None:
            parent = self._teams.get(event.team) or self._root
            span = self._tracer.start_span(
                f"invoke_agent {event.agent}",
                context=child_context(parent),
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": str(event.agent),
                    "postassist.team": str(event.team),
                },
            )
        self._agents[(event.team, event.agent)] = (time.monotonic(), span)

    def _agent_ended(self, event: Event) -> None:
        started, span = self._agents.pop((event.team, event.agent), (None, None))
        failed = event.kind == EventKind.AGENT_ERROR
        if started is not None:
            outcome = "error" if failed else "finished"
            metrics.AGENT_SECONDS.labels(str(event.team), str(event.agent), outcome).observe(
                time.monotonic() - started
            )
        if span is not None:
            self._end(self._calls.pop((event.team, event.agent), None), error=failed)
            if failed:
                _mark_error(span, event.message)
            span.end()

    def _llm_call(self, event: Event) -> None:
        if self._tracer is None:
            return
        key = (event.team, event.agent)
        self._end(self._calls.pop(key, None))
        agent = self._agents.get(key, (None, None))[1]
        parent = agent or self._teams.get(event.team) or self._root
        model = self.model_name or "unknown"
        self._calls[key] = self._tracer.start_span(
            f"chat {model}",
            context=child_context(parent),
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.agent.name": str(event.agent),
                "postassist.purpose": str(event.data.get("purpose", "")),
            },
        )

    def _llm_usage(self, event: Event) -> None:
        agent = str(event.agent)
        data = event.data
        input_tokens = int(data.get("input_tokens") or 0)
        output_tokens = int(data.get("output_tokens") or 0)
        metrics.LLM_CALLS.labels(agent).inc()
        metrics.LLM_SECONDS.labels(agent).observe(float(data.get("seconds") or 0.0))
        metrics.LLM_TOKENS.labels(agent, "input").inc(input_tokens)
        metrics.LLM_TOKENS.labels(agent, "output").inc(output_tokens)
        span = self._calls.pop((event.team, event.agent), None)
        if span is not None:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
            span.end()

    @staticmethod
    def _end(span: Any, *, error: bool = False) -> None:
        if span is not None:
            if error:
                _mark_error(span, "the agent stopped before the model answered")
            span.end()


def model_name_of(model: Any) -> str | None:
    """The name a chat model calls (`ChatOpenAI.model_name`; a fake's `model`), or None."""
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return name if isinstance(name, str) and name else None


def _mark_error(span: Any, description: str) -> None:
    """Give `span` the ERROR status (OpenTelemetry imported only with a tracer)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, description))


_HANDLERS = {
    EventKind.TASK_STATUS: RunObserver._status,
    EventKind.TEAM_STARTED: RunObserver._team_started,
    EventKind.TEAM_FINISHED: RunObserver._team_finished,
    EventKind.AGENT_STARTED: RunObserver._agent_started,
    EventKind.AGENT_FINISHED: RunObserver._agent_ended,
    EventKind.AGENT_ERROR: RunObserver._agent_ended,
    EventKind.LLM_CALL: RunObserver._llm_call,
    EventKind.LLM_USAGE: RunObserver._llm_usage,
}
