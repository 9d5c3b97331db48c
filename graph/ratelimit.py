"""Per-principal rate limits on mutations, with the `limits` library: a moving window
(exact: no burst at window edges), in memory by default, in Redis (through redis-py)
when `BROADCAST_URL` is a Redis URL, so every API replica counts against one budget."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from strawberry.extensions import FieldExtension

from graph.errors import RateLimitedError

logger = logging.getLogger(__name__)

#: The namespace of the mutation budget in the limiter's storage.
NAMESPACE = "postassist-mutations"


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
