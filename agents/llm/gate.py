"""The model gate: every call to this process's chat model passes through it, so the
process knows whether its model is busy or down, and a busy or restarting model makes
calls wait instead of failing.

- `ModelGate.slot()` waits until the model is up and a call slot is free, counts the
  call in flight while it runs, and raises `ModelUnavailableError` only when the model
  is gone for good: the bundled server died and could not be restarted (`fail`), or an
  endpoint has been unreachable for longer than `unavailable_after` seconds
  (`MODEL_UNAVAILABLE_AFTER_SECONDS`).
- Slots: the bundled llama.cpp server computes one request at a time (llama-cpp-python's
  server serialises requests behind one lock), so it gets one slot; an endpoint gets
  `LLM_MAX_CONCURRENT_CALLS` (None: no limit). A call's own deadline
  (`LLM_TIMEOUT_SECONDS`) starts once it holds a slot, so waiting behind other tasks'
  calls never times a call out.
- State, as `health` reports it: STARTING (the bundled server is loading), READY, BUSY
  (calls in flight: a single-slot server cannot answer a probe now, and none is sent),
  DOWN (unreachable or restarting, with the reason and since when).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

#: Seconds between probes of an endpoint that is down while calls wait for it.
PROBE_INTERVAL = 1.0
#: Seconds one such probe may take.
PROBE_TIMEOUT = 2.0

Probe = Callable[[float], Awaitable[str | None]]


async def probe_endpoint(base_url: str, api_key: str | None, seconds: float) -> str | None:
    """GET `{base_url}/models` of an OpenAI-compatible endpoint (cheap: no tokens) within
    `seconds`; None when it answers 2xx, else a short reason (status or error
    class, never the endpoint's body)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=seconds) as client:
            response = await client.get(f"{base_url.rstrip('/')}/models", headers=headers)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    return None if response.is_success else f"HTTP {response.status_code}"


class ModelUnavailableError(RuntimeError):
    """The chat model cannot be reached or started; the message names the fix."""


class ModelState(enum.StrEnum):
    """What the model is doing, as this process sees it."""

    STARTING = "STARTING"
    READY = "READY"
    BUSY = "BUSY"
    DOWN = "DOWN"


@dataclass(frozen=True)
class ModelStatus:
    """A snapshot of the gate: `state`, why it is not READY/BUSY (`reason`), calls in
    flight and waiting, restarts of the bundled server so far, and for how long (s) it
    has been down (0 when up)."""

    state: ModelState
    reason: str | None = None
    in_flight: int = 0
    waiting: int = 0
    restarts: int = 0
    down_for: float = 0.0

    @property
    def ready(self) -> bool:
        """True when calls are being served or can be (READY or BUSY)."""
        return self.state in (ModelState.READY, ModelState.BUSY)


class ModelGate:
    """Admission to the model for every call of this process (see the module docstring).

    `slots`: calls at once (None: no limit). `unavailable_after`: seconds a DOWN model
    may stay down before waiting calls give up with `ModelUnavailableError`. `probe`,
    when given, is how waiting calls find out that a DOWN endpoint is back (it returns
    None when the endpoint answers, else why not); without one, only `up()` ends DOWN.
    `on_timeout`, when given, is awaited by a call that ran past its deadline while it
    still holds its slot (the bundled server restarts itself there, since
    llama-cpp-python's server goes on computing a request whose client left).
    """

    def __init__(
        self,
        *,
        slots: int | None = None,
        unavailable_after: float = 300.0,
        probe: Probe | None = None,
        on_timeout: Callable[[], Awaitable[None]] | None = None,
        starting: bool = False,
    ) -> None:
        self.slots = slots
        self.unavailable_after = unavailable_after
        self.probe = probe
        self.on_timeout = on_timeout
        self.in_flight = 0
        self.waiting = 0
        self.restarts = 0
        self.last_success = 0.0
        self._semaphore = asyncio.Semaphore(slots) if slots else None
        self._up = asyncio.Event()
        self._starting = starting
        self._down_since: float | None = time.monotonic() if starting else None
        self._reason: str | None = "starting" if starting else None
        self._failed: str | None = None
        self._probing: asyncio.Lock = asyncio.Lock()
        if not starting:
            self._up.set()

    # -- state changes ---------------------------------------------------------------

    def up(self) -> None:
        """The model answers again (or for the first time)."""
        if not self._up.is_set() and not self._starting:
            logger.info("model is back after %.1fs", self._down_for())
        self._starting, self._down_since, self._reason = False, None, None
        self._up.set()

    def down(self, reason: str) -> None:
        """The model stopped answering, for `reason`; calls wait for `up()`."""
        if self._up.is_set():
            logger.warning("model is down: %s", reason)
            self._down_since = time.monotonic()
        self._reason = reason
        self._up.clear()

    def fail(self, reason: str, *, expected: bool = False) -> None:
        """The model is gone for good: waiting and later calls raise
        `ModelUnavailableError(reason)`. `expected` (the app stops it) logs nothing."""
        if not expected:
            logger.error("model unavailable for good: %s", reason)
        self._failed = reason
        self._reason, self._down_since = reason, self._down_since or time.monotonic()
        self._up.set()  # wake the waiters: they raise

    def succeeded(self) -> None:
        """A call got its answer (the endpoint is up, whatever a probe said)."""
        self.last_success = time.monotonic()
        if not self._up.is_set() and self._failed is None:
            self.up()

    # -- calls -----------------------------------------------------------------------

    def check(self) -> None:
        """Raise `ModelUnavailableError` if the model failed for good."""
        if self._failed is not None:
            raise ModelUnavailableError(self._failed)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a call slot for the context: waits until the model is up and a slot is
        free. Raises `ModelUnavailableError` when the model failed for good or stayed
        down past `unavailable_after` seconds."""
        held = False
        self.waiting += 1
        try:
            await self._wait_up()
            if self._semaphore is not None:
                await self._semaphore.acquire()
                held = True
            await self._wait_up()  # it may have gone down while this call queued
        except BaseException:
            if held:
                self._semaphore.release()  # type: ignore[union-attr]
            raise
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            if self._semaphore is not None:
                self._semaphore.release()

    async def _wait_up(self) -> None:
        while True:
            if self._failed is not None:
                raise ModelUnavailableError(self._failed)
            if self._up.is_set():
                return
            left = self.unavailable_after - self._down_for()
            if left <= 0 and not self._starting and not await self.recheck(wait=True):
                raise ModelUnavailableError(
                    f"the model has been unavailable for {self._down_for():.0f}s "
                    f"({self._reason}); MODEL_UNAVAILABLE_AFTER_SECONDS is "
                    f"{self.unavailable_after:g}"
                )
            wait = min(PROBE_INTERVAL, max(left, 0.05)) if self.probe else max(left, 0.05)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._up.wait()
                    continue
            if self.probe is not None:
                await self.recheck()

    async def recheck(self, *, wait: bool = False) -> bool:
        """Probe a DOWN model now (one probe at a time for all callers; none while it is
        up, or without a probe) and `up()` when it answers. Waiting calls do this every
        `PROBE_INTERVAL` seconds, and once more before they give up; `health` does it
        when nothing waits, so a model that came back is not reported DOWN for good.
        Returns whether the model is up. While another probe runs, returns False at
        once, or with `wait` waits for that probe's outcome."""
        if self._failed is not None:
            return False
        if self._up.is_set():
            return True
        if self.probe is None or (self._probing.locked() and not wait):
            return False
        async with self._probing:
            if self._up.is_set():
                return self._failed is None
            try:
                problem = await self.probe(PROBE_TIMEOUT)
            except Exception as exc:  # a probe reports, never raises
                problem = type(exc).__name__
            if problem is None and self._failed is None:
                self.up()
            elif problem is not None:
                self._reason = problem
        return self._up.is_set() and self._failed is None

    async def timed_out(self) -> None:
        """A call ran past its deadline (its slot is still held): let the model drop
        the abandoned request (`on_timeout`)."""
        if self.on_timeout is not None:
            await self.on_timeout()

    # -- what health reports ---------------------------------------------------------

    def _down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def status(self) -> ModelStatus:
        """The gate's state now (see `ModelState`)."""
        if self._failed is not None or not self._up.is_set():
            state = ModelState.STARTING if self._starting else ModelState.DOWN
            reason = self._failed or self._reason
        else:
            state = ModelState.BUSY if self.in_flight else ModelState.READY
            reason = None
        return ModelStatus(
            state, reason, self.in_flight, self.waiting, self.restarts, self._down_for()
        )
