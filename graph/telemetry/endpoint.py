"""`/metrics`: the Prometheus text exposition of this process's metrics (or, with
`PROMETHEUS_MULTIPROC_DIR`, of every process on the host that writes there) followed by
the scrape-time counts of the database (`graph.telemetry.metrics.TaskCounts`).

Who may scrape: like `/healthz`, anyone who reaches the port, unless `METRICS_TOKEN` is
set (then `Authorization: Bearer <token>`, HTTP 401 otherwise). The API's keys and JWTs
do not apply: Prometheus is no principal, and a key would let any key holder read the
counts of every principal's tasks. What it exposes is aggregate numbers with bounded
labels (statuses, team and agent names, result words): no id, no text, no principal.
`METRICS_ENABLED=false` removes the route (404). Exempt from the `Host` check, like the
probes: Prometheus scrapes by address.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, values
from starlette.requests import Request
from starlette.responses import Response

from graph.settings import Settings
from graph.telemetry.metrics import TaskCounts, scrape_registry

logger = logging.getLogger(__name__)
_warned: list[bool] = []

PATH = "/metrics"
#: The exposition format served (Prometheus text 0.0.4, which every scraper reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def add_metrics_route(app: FastAPI, settings: Settings) -> None:
    """Serve `PATH` on `app` unless `METRICS_ENABLED` is false."""
    if settings.metrics_enabled:
        app.add_api_route(PATH, metrics, methods=["GET"], include_in_schema=False)


def multiprocess_active(settings: Settings) -> bool:
    """Whether this process writes its metrics to `PROMETHEUS_MULTIPROC_DIR`.
    prometheus-client decides when it is imported, from the environment variable: a
    directory given only in `.env` is logged as a mistake (/metrics would miss this
    process's own numbers) and multiprocess aggregation is left off."""
    if settings.prometheus_multiproc_dir is None:
        return False
    if values.ValueClass is values.MutexValue:  # chosen at import: not multiprocess
        if not _warned:
            _warned.append(True)
            logger.warning(
                "PROMETHEUS_MULTIPROC_DIR is set but was not in the environment when "
                "the process started: /metrics shows this process's metrics only"
            )
        return False
    return True


def mark_exited(settings: Settings) -> None:
    """Drop this process's live gauges from the multiprocess directory (at shutdown;
    a crashed process's stay until the directory is emptied at the next start)."""
    if multiprocess_active(settings):
        multiprocess.mark_process_dead(os.getpid(), str(settings.prometheus_multiproc_dir))


def _authorized(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.encode())


def _exposition(directory: Path | None, counts: dict[str, int] | None) -> bytes:
    """The text of the process (or host) metrics, then of the scrape-time counts."""
    if directory is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(directory))
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if counts is not None:
        text += generate_latest(scrape_registry(counts))
    return text


async def metrics(request: Request) -> Response:
    """GET /metrics (see the module). The database counts are left out, with a
    warning in the log, when the database does not answer: the rest still helps."""
    services = request.app.state.services
    settings: Settings = services.settings
    if not _authorized(request, settings):
        headers = {"WWW-Authenticate": 'Bearer realm="postassist-metrics"'}
        return Response("metrics need METRICS_TOKEN\n", status_code=401, headers=headers)
    state = request.app.state
    if getattr(state, "task_counts", None) is None:
        state.task_counts = TaskCounts(services.session_factory)
    counts: dict[str, int] | None
    try:
        counts = await state.task_counts.read()
    except Exception as exc:
        logger.warning("/metrics: task counts not read: %s: %s", type(exc).__name__, exc)
        counts = None
    directory = settings.prometheus_multiproc_dir if multiprocess_active(settings) else None
    body = await asyncio.to_thread(_exposition, directory, counts)
    return Response(body, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})
