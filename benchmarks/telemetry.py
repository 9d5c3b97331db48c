"""What metrics, logs and traces cost (issue 17 part 3), side by side in one run:

1. in-process, per call (tight loops, best of 5): counting one committed event
   (`db.metrics.count_committed`), `RunObserver.observe` over an agent's typical events
   with tracing off and on (SDK provider, a dropping exporter), and one log line through
   the structlog JSON handler (to a null stream) with the request's context bound;
2. `EventLog.append` of a MESSAGE event on a SQLite file with the event log's counters
   and with them replaced by no-ops, interleaved rounds (the counters against the
   append they ride on).

Usage: `python -m benchmarks.telemetry [--appends 300]` (from the repository root).
Prints tables; asserts nothing (~15 s).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from broadcaster import Broadcast

from agents.teams.state import initial_teams
from agents.telemetry import tracing
from agents.telemetry.runs import RunObserver
from benchmarks.harness import print_table
from db import metrics, repository
from db.engine import create_engine, create_session_factory
from db.enums import EventKind, TaskKind, TaskStatus
from db.event_log import EventLog
from db.events import Event
from db.migrate import upgrade_to_head
from db.models import AgentLog, PostRequest
from graph.telemetry.logs import configure_logging, remove_handler

#: One agent's events as the observer sees them: start, a model call, its usage, a
#: message, the finish.
AGENT_EVENTS = [
    Event(EventKind.AGENT_STARTED, "working", team="content", agent="linkedin_creator"),
    Event(EventKind.LLM_CALL, "call", team="content", agent="linkedin_creator"),
    Event(
        EventKind.LLM_USAGE,
        "usage",
        team="content",
        agent="linkedin_creator",
        data={"input_tokens": 900, "output_tokens": 300, "seconds": 1.2},
    ),
    Event(EventKind.MESSAGE, "a message", team="content", agent="linkedin_creator"),
    Event(EventKind.AGENT_FINISHED, "done", team="content", agent="linkedin_creator"),
]


def _per_call_us(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _observe_all(events: Sequence[Event]) -> Callable[[], None]:
    def run() -> None:
        observer = RunObserver("t", kind="GENERATE", attempt=1, worker_id="w")
        for event in events:
            observer.observe(event)
        observer.outcome = "completed"
        observer.close()

    return run


def in_process() -> list[tuple[str, ...]]:
    rows = [("operation", "per call")]
    message = AgentLog(task_id="t", seq=1, kind=EventKind.MESSAGE, data={})
    done = AgentLog(task_id="t", seq=2, kind=EventKind.TASK_STATUS, data={"status": "COMPLETED"})
    rows.append(
        (
            "count_committed(MESSAGE row)",
            f"{_per_call_us(lambda: metrics.count_committed(message), 20000):.2f} us",
        )
    )
    rows.append(
        (
            "count_committed(COMPLETED row)",
            f"{_per_call_us(lambda: metrics.count_committed(done), 20000):.2f} us",
        )
    )
    per_event = len(AGENT_EVENTS)
    off = _per_call_us(_observe_all(AGENT_EVENTS), 2000) / per_event
    rows.append(("RunObserver.observe, tracing off (per event)", f"{off:.2f} us"))
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    tracing.use_tracer(provider.get_tracer("bench"))
    try:
        on = _per_call_us(_observe_all(AGENT_EVENTS), 500) / per_event
    finally:
        tracing.use_tracer(None)
    rows.append(("RunObserver.observe, tracing on (per event)", f"{on:.2f} us"))
    saved = (logging.getLogger().handlers[:], logging.getLogger().level)
    handler = configure_logging(level="info", fmt="json", stream=io.StringIO())
    handler.stream = open("/dev/null", "w")
    log = logging.getLogger("agents.bench")
    tokens = structlog.contextvars.bind_contextvars(request_id="abc", principal="local")
    try:
        line = _per_call_us(lambda: log.info("task %s: %s", "t", "something happened"), 3000)
        skipped = _per_call_us(lambda: log.debug("not shown %s", "t"), 20000)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
        handler.stream.close()
        remove_handler(handler)
        logging.getLogger().handlers[:], _ = saved
        logging.getLogger().setLevel(saved[1])
    rows.append(("log line, JSON, request context bound", f"{line:.1f} us"))
    rows.append(("log call below LOG_LEVEL", f"{skipped:.2f} us"))
    return rows


async def appends(n: int) -> list[tuple[str, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'telemetry.db'}")
        await upgrade_to_head(engine)
        sessions = create_session_factory(engine)
        broadcast = Broadcast("memory://")
        await broadcast.connect()
        try:
            async with sessions() as session:
                task = await repository.create_task(
                    session=session,
                    request=PostRequest(paper_title="Attention Is All You Need"),
                    kind=TaskKind.GENERATE,
                    teams=initial_teams(),
                )
            log = EventLog(session_factory=sessions, broadcast=broadcast)
            await log.append(task.id, Event.task_status(TaskStatus.RUNNING))
            event = Event(EventKind.MESSAGE, "a message")
            real = (metrics.count_committed, metrics.count_published)
            results: dict[str, list[float]] = {"with counters": [], "counters as no-ops": []}
            for _ in range(3):  # interleaved: the same disk and load for both
                for name in results:
                    if name == "with counters":
                        metrics.count_committed, metrics.count_published = real
                    else:
                        metrics.count_committed = metrics.count_published = lambda *_: None  # type: ignore[assignment]
                    for _ in range(n // 3):
                        started = time.perf_counter()
                        await log.append(task.id, event)
                        results[name].append((time.perf_counter() - started) * 1000)
            metrics.count_committed, metrics.count_published = real
        finally:
            await broadcast.disconnect()
            await engine.dispose()
    rows = [("append of a MESSAGE", "p50", "p95")]
    for name, times in results.items():
        ordered = sorted(times)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        rows.append((name, f"{statistics.median(ordered):.3f} ms", f"{p95:.3f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300)
    n = parser.parse_args().appends
    print_table("Telemetry in-process (best of 5)", in_process())
    print_table(f"EventLog.append on SQLite, {n} appends per case", asyncio.run(appends(n)))


if __name__ == "__main__":
    main()
