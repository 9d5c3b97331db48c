"""The event bus: broadcaster's `Broadcast` for a URL, that reports whether it is up and
outlives the loss of its Redis connection.

What this module owns: `Bus`, the `Broadcast` every process uses (`broadcast_for(url)`).
Its `state` (`BusState`: up or down, since when, why) is what `health` and `/readyz`
report. `subscribe()` never fails because the bus is down: the subscription is recorded
and made when the bus is back. `publish()` fails at once with `BusDownError` while it is
down. Whenever the bus goes down or comes back, every subscriber gets a wake-up
(`WAKE_UP`), so a follower re-reads the database then: notices published while the bus
was down are lost, the rows are not.

The backend of `redis://` and `rediss://` URLs, which reconnects by itself, is
`db.redis_bus.RedisPubSubBackend`; `BusState` and `BusDownError` are `db.bus_state`'s.

The memory and PostgreSQL backends are broadcaster's own; their state is "up since
connect" (the PostgreSQL one does not reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

from broadcaster import Broadcast, Event

from db.broadcaster_compat import BroadcastInternals, Subscriber
from db.bus_state import BusDownError, BusState, now
from db.redis_bus import RedisPubSubBackend

logger = logging.getLogger(__name__)

#: The message of the wake-up every subscriber gets when the bus goes down or comes back.
WAKE_UP = "postassist:bus-state-changed"


def bus_state(broadcast: Broadcast) -> BusState:
    """The state of `broadcast`: a `Bus` reports its own; any other `Broadcast` counts
    as up (it cannot tell)."""
    state = getattr(broadcast, "state", None)
    return state if isinstance(state, BusState) else BusState(up=True)


def watches_outages(broadcast: Broadcast) -> bool:
    """True when a notice `broadcast` loses always comes with a wake-up (`WAKE_UP`), so a
    follower need not read the database on a timer while the bus is up: a `Bus` on
    Redis (its backend reports each outage). False for the memory bus (it loses nothing
    within a process, but an API replica and a worker started apart on `memory://`
    would never hear each other: the timer keeps that mistake at a 5 s lag instead of a
    hang), broadcaster's PostgreSQL backend (it does not notice a dropped connection),
    and any other `Broadcast`."""
    return isinstance(broadcast, Bus) and broadcast.scheme in WATCHED_SCHEMES


#: The bus URL schemes whose lost notices always come with a wake-up: Redis's, whose
#: backend (`RedisPubSubBackend`) reports every outage.
WATCHED_SCHEMES = frozenset({"redis", "rediss"})


class Bus(BroadcastInternals):
    """broadcaster's `Broadcast` with a `state`, subscriptions that never fail because
    the bus is down, a fail-fast `publish`, and a wake-up (`WAKE_UP`) for every
    subscriber when the state changes. Raises `ValueError` for a URL scheme broadcaster
    does not know."""

    def __init__(self, url: str) -> None:
        self.scheme = urlparse(url).scheme
        backend = RedisPubSubBackend(url) if self.scheme in WATCHED_SCHEMES else None
        super().__init__(url, backend=backend)
        if backend is not None:
            backend.on_change = self._wake_all
        self._ready: dict[str, asyncio.Event] = {}
        self._connected = BusState(up=False, since=now(), error="not connected")

    @property
    def state(self) -> BusState:
        """The backend's state; "up since connect" for a backend that reports none."""
        state = getattr(self.backend, "state", None)
        return state if isinstance(state, BusState) else self._connected

    async def connect(self) -> None:
        """Connect the backend (raises as the backend does) and start delivering."""
        await super().connect()
        self._connected = BusState(up=True, since=now())

    async def publish(self, channel: str, message: Any) -> None:
        """Publish `message` (a string) on `channel`; `BusDownError` at once while down."""
        if not self.state.up:
            raise BusDownError(self.state.describe())
        await super().publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscriber]:
        """A `Subscriber` of `channel` (`await subscriber.get()` -> `Event`) for the
        block's lifetime. Subscribers that arrive together share one backend SUBSCRIBE
        and all wait for it (broadcaster's own `subscribe` lost one of two first
        subscribers of a channel). Raises only what the backend raises for other reasons
        than the bus being down."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        queues = self.subscribers.setdefault(channel, set())
        first = not queues
        queues.add(queue)
        try:
            if first:
                ready = self._ready[channel] = asyncio.Event()
                try:
                    await self.backend.subscribe(channel)
                finally:
                    ready.set()
            else:
                await self._ready[channel].wait()
            yield Subscriber(queue)
        finally:
            await self._leave(channel, queues, queue)

    async def _leave(
        self, channel: str, queues: set[asyncio.Queue[Event | None]], queue: asyncio.Queue[Any]
    ) -> None:
        queues.discard(queue)
        if not queues and self.subscribers.get(channel) is queues:
            del self.subscribers[channel]
            self._ready.pop(channel, None)
            try:
                await self.backend.unsubscribe(channel)
            except Exception:  # a subscriber's end must not become an error
                logger.exception("could not unsubscribe from %s", channel)
        queue.put_nowait(None)

    def _wake_all(self, state: BusState) -> None:
        for channel, queues in self.subscribers.items():
            for queue in queues:
                queue.put_nowait(Event(channel=channel, message=WAKE_UP))


def broadcast_for(url: str) -> Bus:
    """A `Bus` for `url` (`memory://`, `redis://`, `rediss://`, `postgres://`...); not
    connected yet. Raises `ValueError` for a scheme broadcaster does not know."""
    return Bus(url)


__all__ = [
    "Bus",
    "broadcast_for",
    "bus_state",
    "watches_outages",
]
