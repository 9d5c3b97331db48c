"""Liveness and readiness: what is actually up.

- `/healthz` (liveness): the process serves HTTP; nothing else is checked.
- `/readyz` (readiness): the database answers `SELECT 1`, the bus takes a publish, and
  the model is ready (its endpoint answers `GET /models` for an HTTP model), each within
  `READINESS_TIMEOUT_SECONDS`; HTTP 200 when all are, 503 otherwise, with each check.
- `ModelMonitor` probes the model endpoint in the background every
  `READINESS_CACHE_SECONDS`, so the `health` query's `model.ready` (a synchronous
  `ready()`) reports the last probe, at most that old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from agents.llm import ModelSource

logger = logging.getLogger(__name__)

#: The channel a readiness check publishes on (nobody listens).
READINESS_CHANNEL = "postassist:readiness"


class ModelMonitor:
    """The model's readiness: its own `ready()` and, when it has a `probe`, the last
    probe of its endpoint (`interval` seconds old at most while `run` runs)."""

    def __init__(self, model: ModelSource, *, interval: float, timeout: float) -> None:
        self.model, self.interval, self.timeout = model, interval, timeout
        self.problem: str | None = None
        self.checked_at = 0.0

    def ready(self) -> bool:
        """True when the model can take requests, as last seen."""
        return self.model.ready() and self.problem is None

    async def refresh(self) -> str | None:
        """Probe now; return (and remember) None when the model is reachable, else why."""
        if not self.model.ready():
            self.problem = "the model is not running"
        elif self.model.probe is not None:
            problem = await self.model.probe(self.timeout)
            if problem != self.problem:
                logger.info("model endpoint %s", f"not ready: {problem}" if problem else "ready")
            self.problem = problem
        self.checked_at = time.monotonic()
        return self.problem

    async def current(self) -> str | None:
        """The cached result if younger than `interval`, else a fresh probe."""
        if time.monotonic() - self.checked_at >= self.interval:
            return await self.refresh()
        return self.problem

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ModelSource]:
        """Probe once, then every `interval` seconds in the background; yields the model
        with `ready()` answering from the probes."""
        await self.refresh()

        async def loop() -> None:
            while True:
                await asyncio.sleep(max(self.interval, 0.5))
                await self.refresh()

        task = asyncio.create_task(loop(), name="model-monitor")
        try:
            yield replace(self.model, ready=self.ready)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _check(coro: Any, seconds: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(seconds):
            problem = await coro
    except TimeoutError:
        problem = f"no answer within {seconds:g}s"
    except Exception as exc:  # a readiness check reports, never raises
        problem = f"{type(exc).__name__}"
    return {"ok": problem is None, **({"error": problem} if problem else {})}


async def _database(services: Any) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _bus(services: Any) -> None:
    await services.event_log.broadcast.publish(channel=READINESS_CHANNEL, message="ping")


async def readiness(services: Any, monitor: ModelMonitor, seconds: float) -> dict[str, Any]:
    """Each check as `{ok, error?}` and `ready` (all ok): database, bus, model; each
    check gets `seconds`."""
    checks = {
        "database": await _check(_database(services), seconds),
        "bus": await _check(_bus(services), seconds),
        "model": await _check(monitor.current(), seconds),
    }
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


async def readyz(request: Request) -> JSONResponse:
    """Readiness endpoint: 200 when the database, bus and model are up, else 503."""
    state = request.app.state
    services = getattr(state, "services", None)
    if services is None:
        return JSONResponse({"ready": False, "checks": {}}, status_code=503)
    timeout = services.settings.readiness_timeout_seconds
    report = await readiness(services, services.model_monitor, timeout)
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


async def healthz(request: Request) -> JSONResponse:
    """Liveness endpoint: the process is up (checks nothing else)."""
    return JSONResponse({"status": "ok"})
