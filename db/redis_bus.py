"""The bus's Redis backend: `RedisPubSubBackend`, the broadcaster backend of `redis://`
and `rediss://` URLs. It keeps one pub/sub connection subscribed to every channel that
has subscribers; on a connection error it drops the connection, reconnects with
exponential back-off and jitter (`reconnect_delays`) and SUBSCRIBEs every channel again.

Why not broadcaster 0.3.1's `RedisBackend`: its listener task wakes before the first
SUBSCRIBE completes (it then found no channel and never received a message), and it
ends for good on the first `ConnectionError`: nothing restarts it, so after a Redis
restart no subscriber of the process received anything again, and every later
`subscribe()` or `unsubscribe()` raised (a subscription then failed with
`INTERNAL_SERVER_ERROR`). `tests/graph/test_bus_outage.py` runs that outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

from broadcaster import Event
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from db.broadcaster_compat import BroadcastBackend
from db.bus_state import BusDownError, BusState, now

logger = logging.getLogger(__name__)

#: Pauses between reconnect attempts grow from this many seconds...
RECONNECT_FIRST_SECONDS = 0.1
#: ... doubling up to this many. The cap bounds how long after Redis answers again the
#: bus is back: one pause (<= 2 s) plus one connect, inside the 5 s the service promises
#: (README, "What survives what"); each attempt against a stopped Redis costs one refused
#: TCP connect.
RECONNECT_MAX_SECONDS = 2.0
#: Connect and command timeout of the Redis connections, seconds: a Redis on the same
#: network answers PUBLISH in well under a millisecond, so this only bounds a hung one
#: (the default READINESS_TIMEOUT_SECONDS is the same 2 s).
REDIS_TIMEOUT_SECONDS = 2.0
#: The pub/sub reader waits this long for a message before it looks at its flags again.
READ_SECONDS = 1.0
#: Idle seconds after which redis-py PINGs the pub/sub connection, so a dead one shows.
HEALTH_CHECK_SECONDS = 5
#: Errors that mean the Redis connection is gone (redis-py's, and socket errors).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def reconnect_delays(
    first: float = RECONNECT_FIRST_SECONDS,
    cap: float = RECONNECT_MAX_SECONDS,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Seconds to pause before reconnect attempts 1, 2, 3 ...: exponential (`first`,
    2 x `first`, ... at most `cap`) with "equal jitter" (a uniform draw from the upper
    half of each step), so processes that lost Redis together do not retry in step.
    Endless."""
    draw = rng or random.Random()
    step = first
    while True:
        yield step / 2 + draw.uniform(0, step / 2)
        step = min(cap, step * 2)


class RedisPubSubBackend(BroadcastBackend):
    """A broadcaster backend on Redis pub/sub that reconnects by itself.

    `state` is a `BusState`; `on_change(state)` is called on each change (the `Bus`
    wakes its subscribers with it). `connect()` raises (a redis-py `ConnectionError`,
    `OSError`) when Redis does not answer at start-up: a service does not start on a bus
    it never reached; after that, losses are reconnected in the background.
    """

    def __init__(
        self, url: str, *, delays: Callable[[], Iterator[float]] = reconnect_delays
    ) -> None:
        # The pub/sub connection retries nothing (a loss shows at once and is handled
        # here); a PUBLISH retries once at once, on a new connection, because the first
        # PUBLISH after a Redis restart meets the pooled connection to the old server.
        self._client = _redis(url, retries=0)
        self._publisher = _redis(url, retries=1)
        self._delays = delays
        self._channels: set[str] = set()
        self._messages: asyncio.Queue[Event] = asyncio.Queue()
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # one (re)connect or (UN)SUBSCRIBE at a time
        self._broken: BaseException | None = None
        self._runner: asyncio.Task[None] | None = None
        self.state = BusState(up=False, since=now(), error="not connected")
        self.on_change: Callable[[BusState], None] | None = None

    async def connect(self) -> None:
        """Open the pub/sub connection, then keep it open in the background."""
        await self._open()
        self._runner = asyncio.create_task(self._run(), name="redis-bus")

    async def disconnect(self) -> None:
        """Stop reconnecting and close every connection."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._drop()
        await self._client.aclose()
        await self._publisher.aclose()
        self.state = BusState(up=False, since=now(), error="disconnected")

    async def subscribe(self, channel: str) -> None:
        """Receive `channel` from now on (at once when connected, else on reconnect)."""
        self._channels.add(channel)
        await self._sync(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving `channel`; never raises for a lost connection."""
        self._channels.discard(channel)
        await self._sync(channel)

    async def publish(self, channel: str, message: Any) -> None:
        """PUBLISH `message` on `channel`. Raises `BusDownError` at once while down, and
        when the PUBLISH fails (the pub/sub connection is then reconnected too)."""
        if not self.state.up:
            raise BusDownError(self.state.describe())
        try:
            await self._publisher.publish(channel, message)
        except CONNECTION_ERRORS as exc:
            self._broken = exc
            raise BusDownError(f"publish failed: {type(exc).__name__}") from exc

    async def next_published(self) -> Event:
        """The next message of a subscribed channel (waits across reconnects)."""
        return await self._messages.get()

    async def _sync(self, channel: str) -> None:
        """Make the connection's subscription to `channel` match `_channels`; a failure
        leaves it to the reconnect, which subscribes every channel again."""
        if not self.state.up:
            return  # `_open` subscribes every channel before the bus is up again
        async with self._lock:
            if self._pubsub is None or self._broken is not None:
                return
            try:
                if channel in self._channels:
                    await self._pubsub.subscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)
            except CONNECTION_ERRORS as exc:
                self._broken = exc

    async def _open(self) -> None:
        """Connect a new pub/sub connection and SUBSCRIBE every channel; then up. The
        last check of the channels and the change to up happen with no await between,
        so a channel added meanwhile is either subscribed here or by its `_sync`."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            async with self._lock:
                await pubsub.connect()
                subscribed: set[str] = set()
                while self._channels != subscribed:
                    missing, extra = self._channels - subscribed, subscribed - self._channels
                    if missing:
                        await pubsub.subscribe(*sorted(missing))
                    if extra:
                        await pubsub.unsubscribe(*sorted(extra))
                    subscribed = (subscribed | missing) - extra
                self._pubsub, self._broken = pubsub, None
                self._change(BusState(up=True, since=now()))
        except BaseException:
            await _close(pubsub)
            raise

    async def _drop(self) -> None:
        async with self._lock:
            pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _close(pubsub)

    async def _run(self) -> None:
        """Receive until the connection breaks, then reconnect; forever."""
        while True:
            try:
                await self._receive()
            except CONNECTION_ERRORS as exc:
                self._lost(exc)
            except Exception as exc:  # never end the way broadcaster's listener did
                logger.exception("Redis bus: reading failed")
                self._lost(exc)
            await self._drop()
            await self._reconnect()

    async def _receive(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            if self._broken is not None:
                raise self._broken
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_SECONDS)
            if message is not None and message["type"] == "message":
                channel = message["channel"].decode(errors="replace")
                data = message["data"].decode(errors="replace")
                self._messages.put_nowait(Event(channel=channel, message=data))

    async def _reconnect(self) -> None:
        for delay in self._delays():
            await asyncio.sleep(delay)
            try:
                await self._open()
            except CONNECTION_ERRORS as exc:
                logger.debug("Redis bus: reconnect failed: %s", exc)
            except Exception:  # keep trying: a bus that stops trying is down for good
                logger.exception("Redis bus: reconnect failed")
            else:
                return

    def _lost(self, exc: BaseException) -> None:
        if self.state.up:
            logger.warning("Redis bus down (%s: %s); reconnecting", type(exc).__name__, exc)
            self._change(BusState(up=False, since=now(), error=type(exc).__name__))

    def _change(self, state: BusState) -> None:
        was, self.state = self.state, state
        if state.up and was.error != "not connected" and was.since and state.since:
            down_for = (state.since - was.since).total_seconds()
            logger.warning("Redis bus up again after %.1f s down", down_for)
        if self.on_change is not None:
            self.on_change(state)


def _redis(url: str, *, retries: int) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(NoBackoff(), retries),
    )


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(*CONNECTION_ERRORS):
        await pubsub.aclose()
