"""Liveness and readiness: what is actually up.

- `/healthz` (liveness): the process serves HTTP; nothing else is checked.
- `/readyz` (readiness): the database answers `SELECT 1`, the bus is up (as
  `db.bus.Bus.state` says, with since when) and takes a publish, and
  the model is READY or BUSY (see `ModelMonitor`), each within
  `READINESS_TIMEOUT_SECONDS`; HTTP 200 when all are, 503 otherwise, with each check.
- `ModelMonitor` tells busy from down: the model gate's state where this process calls
  the model, and an endpoint probe every `READINESS_CACHE_SECONDS` only where that is
  safe, so the `health` query's `model` (a synchronous `status()`) is at most that old.
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

from agents.llm.chat import ModelSource
from agents.llm.gate import ModelState, ModelStatus
from db.bus import bus_state

logger = logging.getLogger(__name__)

#: The channel a readiness check publishes on (nobody listens).
READINESS_CHANNEL = "postassist:readiness"


class ModelMonitor:
    """The model's state for `health` and `/readyz`.

    When this process calls the model, its `ModelGate` is the truth: READY, BUSY (calls
    in flight), STARTING or DOWN with the reason. The bundled llama.cpp server computes
    one request at a time and answers no probe while it works, so it is never probed:
    its process state and the gate's in-flight count say it all. An endpoint is probed
    (`GET /models`) every `interval` seconds, but only while no call is in flight and
    none succeeded within `interval` (a busy endpoint is not down); an API-only replica,
    which calls no model, reports the probe alone.
    """

    def __init__(self, model: ModelSource, *, interval: float, timeout: float) -> None:
        self.model, self.interval, self.timeout = model, interval, timeout
        self.problem: str | None = None
        self.checked_at = 0.0

    def status(self) -> ModelStatus:
        """The model's state as last seen (see the class docstring)."""
        gate = self.model.status()
        if gate is not None and not gate.ready:
            return gate
        if gate is None and not self.model.ready():
            return ModelStatus(ModelState.DOWN, "the model is not running")
        if self.problem is not None:
            return replace(gate or ModelStatus(ModelState.DOWN), state=ModelState.DOWN,
                           reason=self.problem)  # fmt: skip
        return gate or ModelStatus(ModelState.READY)

    def ready(self) -> bool:
        """True when the model takes requests (READY or BUSY), as last seen."""
        return self.status().ready

    def _answering(self) -> bool:
        gate = self.model.gate
        return gate is not None and (
            gate.in_flight > 0 or time.monotonic() - gate.last_success < max(self.interval, 1.0)
        )

    async def refresh(self) -> ModelStatus:
        """Probe now if a probe is due and safe (see the class docstring); return the
        status."""
        gate = self.model.status()
        if gate is not None and not gate.ready and self.model.gate is not None:
            await self.model.gate.recheck()  # a model that came back is up again
            self.problem = None  # the gate knows why it is down
        elif self.model.probe is None or self._answering():
            self.problem = None  # nothing to probe, or busy
        else:
            problem = await self.model.probe(self.timeout)
            if problem != self.problem:
                logger.info("model endpoint %s", f"not ready: {problem}" if problem else "ready")
            self.problem = problem
        self.checked_at = time.monotonic()
        return self.status()

    async def current(self) -> ModelStatus:
        """The status, probing first if the last probe is older than `interval`."""
        if time.monotonic() - self.checked_at >= self.interval:
            return await self.refresh()
        return self.status()

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[ModelSource]:
        """Probe once, then every `interval` seconds in the background; yields the model
        with `ready()` answering from the monitor."""
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


async def _model_check(monitor: ModelMonitor, seconds: float) -> dict[str, Any]:
    """`{ok, state, inFlight, error?}`: ok while the model is READY or BUSY."""
    try:
        async with asyncio.timeout(seconds):
            status = await monitor.current()
    except TimeoutError:
        status = ModelStatus(ModelState.DOWN, f"no answer within {seconds:g}s")
    check: dict[str, Any] = {"ok": status.ready, "state": status.state.value}
    check["inFlight"] = status.in_flight
    return {**check, **({"error": status.reason} if status.reason else {})}


async def _database(services: Any) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _bus(services: Any) -> str | None:
    """None when the bus takes a publish; `down since <UTC time> (<error type>)` while it
    reports itself down (`db.bus_state.BusState`), without trying it."""
    broadcast = services.event_log.broadcast
    state = bus_state(broadcast)
    if not state.up:
        return state.describe()
    await broadcast.publish(channel=READINESS_CHANNEL, message="ping")
    return None


async def readiness(services: Any, monitor: ModelMonitor, seconds: float) -> dict[str, Any]:
    """Each check as `{ok, error?}` and `ready` (all ok): database, bus, model; each
    check gets `seconds`."""
    checks = {
        "database": await _check(_database(services), seconds),
        "bus": await _check(_bus(services), seconds),
        "model": await _model_check(monitor, seconds),
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
