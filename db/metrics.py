"""The Prometheus metrics of the event log (prometheus-client, default registry;
multiprocess-safe when `PROMETHEUS_MULTIPROC_DIR` is set before the process starts).

Counted as each committed event is published (`EventLog.publish`): no read, one counter
increment per event (a pre-made child per kind) and one per bus notice sent: ~2 us per
event against a ~5 ms SQLite append (`python -m benchmarks.telemetry`).
The gauges of tasks by status are not here: `graph.telemetry` counts them at scrape time
with one grouped query.
"""

from __future__ import annotations

from prometheus_client import Counter

from db.enums import TERMINAL_STATUSES, EventKind
from db.models import AgentLog

EVENTS_APPENDED = Counter(
    "postassist_events_appended_total",
    "Events committed to the event log by this process, by kind",
    ["kind"],
)
EVENTS_PUBLISHED = Counter(
    "postassist_events_published_total",
    "Notices sent on the broadcast bus, by channel: task (one per event), tasks (one "
    "per status change), queue (one per enqueued task); none while the bus is down",
    ["channel"],
)
TASKS_FINISHED = Counter(
    "postassist_tasks_finished_total",
    "Tasks that reached a terminal status (COMPLETED, FAILED, CANCELLED), by status and "
    "error code (FailureCode of a FAILED task; `none` otherwise)",
    ["status", "error_code"],
)

_APPENDED = {kind.value: EVENTS_APPENDED.labels(kind.value) for kind in EventKind}
_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


def count_committed(row: AgentLog) -> None:
    """Count one committed event `row` (and its task's outcome when it is terminal)."""
    child = _APPENDED.get(row.kind)
    (child or EVENTS_APPENDED.labels(str(row.kind))).inc()
    if row.kind == EventKind.TASK_STATUS:
        status = row.data.get("status")
        if status in _TERMINAL:
            code = row.data.get("error_code") or "none"
            TASKS_FINISHED.labels(status, str(code)).inc()


def count_published(channel: str) -> None:
    """Count one notice sent on `channel` (labelled by its prefix: `task:<id>` -> task)."""
    EVENTS_PUBLISHED.labels(channel.partition(":")[0]).inc()
