"""The API's own Prometheus metrics: open WebSocket connections and active
subscriptions (gauges kept as they change, summed over the live processes of a host in
multiprocess mode), and the counts read at scrape time (`TaskCounts`, one grouped
`COUNT` over the task table): tasks by status, the queue's depth, reviews waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func
from sqlmodel import col, select

from db.engine import SessionFactory
from db.enums import TaskStatus
from db.models import Task

WEBSOCKET_CONNECTIONS = Gauge(
    "postassist_websocket_connections",
    "Open WebSocket connections that passed authentication (counted per principal "
    "against WS_MAX_CONNECTIONS_*), summed over this host's live API processes",
    multiprocess_mode="livesum",
)
ACTIVE_SUBSCRIPTIONS = Gauge(
    "postassist_active_subscriptions",
    "GraphQL subscriptions running (taskProgress, taskUpdates, batchProgress; any "
    "transport), summed over this host's live API processes",
    ["transport"],
    multiprocess_mode="livesum",
)

#: Seconds one read of the counts serves further scrapes: an open /metrics polled in a
#: loop costs the database at most one grouped COUNT a second.
REUSE_SECONDS = 1.0


class TaskCounts:
    """Tasks by status from one database (`read`), reused for `REUSE_SECONDS`."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self.session_factory = session_factory
        self._at = float("-inf")
        self._counts: dict[str, int] = {}

    async def read(self) -> dict[str, int]:
        """`{status: count}` with every status present (0 when none), read with one
        `SELECT status, count(*) FROM task GROUP BY status` (over the index
        `ix_task_status_created_at_id`) unless the last read is under `REUSE_SECONDS`
        old."""
        now = time.monotonic()
        if now - self._at < REUSE_SECONDS:
            return self._counts
        query = select(col(Task.status), func.count()).group_by(col(Task.status))
        async with self.session_factory() as session:
            rows = (await session.exec(query)).all()
        counts = {status.value: 0 for status in TaskStatus}
        counts.update({str(status): int(n) for status, n in rows})
        self._at, self._counts = now, counts
        return counts


class _Counts:
    """A collector of one scrape's counts (see `scrape_registry`)."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "postassist_tasks", "Tasks by status, counted at scrape time", labels=["status"]
        )
        for status, n in sorted(self.counts.items()):
            by_status.add_metric([status], n)
        yield by_status
        yield GaugeMetricFamily(
            "postassist_queue_depth",
            "Tasks waiting to start (PENDING), counted at scrape time",
            value=self.counts.get(TaskStatus.PENDING.value, 0),
        )
        yield GaugeMetricFamily(
            "postassist_reviews_waiting",
            "Posts waiting for a person's review (AWAITING_REVIEW), counted at scrape time",
            value=self.counts.get(TaskStatus.AWAITING_REVIEW.value, 0),
        )


def scrape_registry(counts: Mapping[str, int]) -> CollectorRegistry:
    """A registry of the scrape-time gauges from `counts` (`TaskCounts.read`): database
    facts, the same whichever process answers, so never summed across processes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Counts(counts))  # type: ignore[arg-type]
    return registry
