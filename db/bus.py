"""The event bus: broadcaster's `Broadcast` for a URL, with its Redis backend's
subscription race fixed.

broadcaster 0.3.1's `RedisBackend.subscribe` wakes its listener before the SUBSCRIBE
completes. The listener then finds redis-py's pubsub with no channel yet
(`PubSub.listen` loops `while self.subscribed`), stops at once, and waits for a wake-up
that never comes again: the process never receives a message. Followers then only saw
events through their database poll (`FOLLOW_POLL_SECONDS`), and `taskUpdates`, which
has no poll, saw nothing at all over Redis. `tests/db/test_event_log.py` checks that a
status notice arrives on every bus.
"""

from __future__ import annotations

from urllib.parse import urlparse

from broadcaster import Broadcast
from broadcaster._backends.redis import RedisBackend


class RedisPubSubBackend(RedisBackend):
    """broadcaster's Redis pub/sub backend that wakes its listener only once the
    SUBSCRIBE has completed (so the listener sees the channel)."""

    async def subscribe(self, channel: str) -> None:
        """Subscribe to `channel`, then wake the listener."""
        await self._pubsub.subscribe(channel)
        self._ready.set()


def broadcast_for(url: str) -> Broadcast:
    """A `Broadcast` for `url` (`memory://`, `redis://`, `rediss://`, `postgres://`...);
    not connected yet. Raises `ValueError` for a scheme broadcaster does not know."""
    if urlparse(url).scheme in ("redis", "rediss"):
        return Broadcast(backend=RedisPubSubBackend(url))
    return Broadcast(url)
