"""Per-principal rate limits on mutations and per-address limits on failed
authentication, with the `limits` library: a moving window (exact: no burst at window
edges), in memory by default, in Redis (through redis-py) when `BROADCAST_URL` is a
Redis URL, so every API replica counts against one budget. Also the per-principal cap
on queued tasks (`QueueCap`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from strawberry.extensions import FieldExtension

from graph.errors import RateLimitedError

logger = logging.getLogger(__name__)

#: The namespace of the mutation budget in the limiter's storage.
NAMESPACE = "postassist-mutations"
#: The namespace of the failed-authentication budget (per peer address).
AUTH_FAILURES_NAMESPACE = "postassist-auth-failures"
#: `retryAfter` (seconds) of a submission refused because its principal already has
#: `MAX_QUEUED_PER_PRINCIPAL` tasks waiting: a hint, not a promise, since a place frees
#: only when one of them starts (`taskUpdates` says when). 10 s is a few queue polls and
#: well under one generation on the bundled model.
QUEUE_RETRY_AFTER = 10


def limiter_storage(broadcast_url: str) -> Storage:
    """Redis storage for a `redis://` or `rediss://` bus URL, memory otherwise."""
    if broadcast_url.startswith(("redis://", "rediss://")):
        return RedisStorage(f"async+{broadcast_url}", implementation="redispy")
    return MemoryStorage()


class MutationRateLimiter:
    """Counts each principal's mutations against `rates` (`limits` notation, e.g.
    "60/minute" or "10/second;500/hour"; `RATE_LIMIT_MUTATIONS`). Raises `ValueError`
    at construction for rates it cannot parse."""

    def __init__(self, rates: str, storage: Storage) -> None:
        self.items: list[RateLimitItem] = parse_many(rates)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        #: The per-principal cap on waiting tasks, whose turns live with this budget.
        self.queue = QueueCap()

    async def hit(self, principal_id: str) -> int | None:
        """Count one mutation of `principal_id`; None if it is within every rate, else
        the whole seconds (>= 1) until the tightest exhausted window lets one through.
        If the storage is unreachable the mutation is let through (logged): the limit
        protects the service, it must not take it down with Redis."""
        try:
            for item in self.items:
                if not await self.limiter.hit(item, NAMESPACE, principal_id):
                    stats = await self.limiter.get_window_stats(item, NAMESPACE, principal_id)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:
            logger.warning("rate limit storage unavailable, not limiting: %s", exc)
        return None


class FailureThrottle:
    """Counts failures (API keys that name no key) per peer address against `rates`
    (`limits` notation; `RATE_LIMIT_AUTH_FAILURES`). Raises `ValueError` at
    construction for rates it cannot parse. An unreachable storage throttles nothing
    (logged), as for mutations."""

    def __init__(self, rates: str, storage: Storage) -> None:
        self.items: list[RateLimitItem] = parse_many(rates)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)

    async def retry_after(self, address: str) -> int | None:
        """None while `address` may fail again; else the whole seconds (>= 1) until the
        tightest spent window lets one more through. Counts nothing."""
        try:
            for item in self.items:
                if not await self.limiter.test(item, AUTH_FAILURES_NAMESPACE, address):
                    stats = await self.limiter.get_window_stats(
                        item, AUTH_FAILURES_NAMESPACE, address
                    )
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:
            logger.warning("auth failure storage unavailable, not throttling: %s", exc)
        return None

    async def record(self, address: str) -> None:
        """Count one failure of `address` in every window."""
        try:
            for item in self.items:
                await self.limiter.hit(item, AUTH_FAILURES_NAMESPACE, address)
        except Exception as exc:
            logger.warning("auth failure storage unavailable, not counting: %s", exc)


class QueueCap:
    """Refuses a submission of a principal that already has `limit` tasks waiting
    (`MAX_QUEUED_PER_PRINCIPAL`), so one caller cannot fill the shared queue.

    A principal's submissions take turns in this process (`place`), so its count and
    the insert that follows cannot interleave with another of its own; API replicas
    take turns each, so at one instant each may let one submission past the cap. A
    call that waits for its own task (verifyPost) holds its place until it returns."""

    def __init__(self) -> None:
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}
        self._held: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def _turn(self, principal_id: str) -> AsyncIterator[None]:
        lock, users = self._turns.get(principal_id, (asyncio.Lock(), 0))
        self._turns[principal_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[principal_id]
            if users <= 1:
                del self._turns[principal_id]
            else:
                self._turns[principal_id] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def place(
        self,
        principal_id: str,
        limit: int,
        queued: Callable[[], Awaitable[int]],
        *,
        held: bool = False,
        places: int = 1,
    ) -> AsyncIterator[None]:
        """Let the body queue `places` tasks of `principal_id` (a batch: several), or
        raise `RateLimitedError` (`retryAfter` = QUEUE_RETRY_AFTER s, `limit`) when
        `await queued()` (its tasks waiting now, as the database counts them) plus the
        places `held` by its calls in flight here plus `places` is more than `limit`.
        The body runs in the principal's turn; with `held`, outside it, and its places
        count until it returns."""
        async with self._turn(principal_id):
            waiting = await queued() + self._held.get(principal_id, 0)
            if waiting + places > limit:
                adds = f" and this batch adds {places}" if places > 1 else ""
                raise RateLimitedError(
                    f"{waiting} of your tasks are already waiting to start{adds}, the most "
                    f"MAX_QUEUED_PER_PRINCIPAL={limit} allows: retry once one has started "
                    f"(in about {QUEUE_RETRY_AFTER} s), or cancel one",
                    retryAfter=QUEUE_RETRY_AFTER,
                    limit=limit,
                )
            if not held:
                yield
                return
            self._held[principal_id] = self._held.get(principal_id, 0) + places
        try:
            yield
        finally:
            self._held[principal_id] -= places
            if not self._held[principal_id]:
                del self._held[principal_id]


class RateLimited(FieldExtension):
    """A field extension for mutations: counts the call against the caller's budget
    first and raises `RateLimitedError` (`extensions.code = RATE_LIMITED`,
    `extensions.retryAfter` in seconds) when it is spent."""

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        """Check the budget, then resolve."""
        principal = info.context.principal
        retry_after = await info.context.services.rate_limiter.hit(principal.id)
        if retry_after is not None:
            raise RateLimitedError(
                f"too many mutations; retry in {retry_after} s", retryAfter=retry_after
            )
        return await next_(source, info, **kwargs)
