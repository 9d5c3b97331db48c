"""The bus through a Redis outage, on a redis-server of the test's own (killed and
started again on the same port), and its reconnect back-off."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator

import pytest

from db.broadcaster_compat import Subscriber
from db.bus import WAKE_UP, Bus, broadcast_for
from db.bus_state import BusDownError
from db.redis_bus import reconnect_delays
from tests.db.redis_process import RedisProcess

pytestmark = pytest.mark.anyio

#: How long a test waits for what must happen (a timeout, not a measurement).
WITHIN = 5.0


@pytest.fixture
async def bus(redis_server: RedisProcess) -> AsyncIterator[Bus]:
    bus = broadcast_for(redis_server.url)
    await bus.connect()
    yield bus
    await bus.disconnect()


async def next_message(subscriber: Subscriber, wanted: str) -> None:
    """Wait for `wanted` on `subscriber`, skipping anything else (repeats, wake-ups)."""
    while (await subscriber.get()).message != wanted:
        pass


async def delivered(bus: Bus, channel: str, message: str, *subscribers: Subscriber) -> None:
    """Publish `message` on `channel` every 0.1 s until every subscriber received it (a
    SUBSCRIBE is asynchronous: an early PUBLISH may go before it)."""

    async def publish() -> None:
        while True:
            await bus.publish(channel, message)
            await asyncio.sleep(0.1)

    publishing = asyncio.create_task(publish())
    try:
        async with asyncio.timeout(WITHIN):
            await asyncio.gather(*(next_message(s, message) for s in subscribers))
    finally:
        publishing.cancel()


async def state_is(bus: Bus, up: bool) -> None:
    async with asyncio.timeout(WITHIN):
        while bus.state.up != up:  # noqa: ASYNC110 - the state is a property, not an event
            await asyncio.sleep(0.02)


async def test_subscriptions_outlive_a_redis_restart(bus: Bus, redis_server: RedisProcess) -> None:
    assert bus.state.up and bus.state.error is None
    async with bus.subscribe("early") as early:
        await delivered(bus, "early", "before", early)
        connected = bus.state.since

        redis_server.kill()
        await state_is(bus, up=False)
        assert bus.state.error == "ConnectionError" and bus.state.since != connected
        async with asyncio.timeout(WITHIN):
            await next_message(early, WAKE_UP)
        with pytest.raises(BusDownError):
            await bus.publish("early", "lost")
        async with bus.subscribe("gone"):  # neither subscribing nor leaving raises
            pass
        async with (
            bus.subscribe("during") as during,
            bus.subscribe("pair") as first,
            bus.subscribe("pair") as second,
        ):
            redis_server.start()
            await state_is(bus, up=True)  # within 5 s of Redis answering
            async with asyncio.timeout(WITHIN):
                await next_message(early, WAKE_UP)
            await delivered(bus, "early", "after", early)
            await delivered(bus, "during", "after", during)
            await delivered(bus, "pair", "after", first, second)


async def test_two_first_subscribers_of_a_channel_both_receive(bus: Bus) -> None:
    """broadcaster's own `subscribe` kept only one of two that arrived together."""
    async with contextlib.AsyncExitStack() as stack:
        first, second = await asyncio.gather(
            stack.enter_async_context(bus.subscribe("together")),
            stack.enter_async_context(bus.subscribe("together")),
        )
        await delivered(bus, "together", "hello", first, second)


async def test_a_memory_bus_is_up_once_connected() -> None:
    bus = broadcast_for("memory://")
    assert not bus.state.up
    await bus.connect()
    assert bus.state.up and bus.state.since is not None
    async with bus.subscribe("c") as subscriber:
        await bus.publish("c", "m")
        assert (await asyncio.wait_for(subscriber.get(), WITHIN)).message == "m"
    await bus.disconnect()


def test_reconnect_delays_double_up_to_the_cap_with_jitter() -> None:
    delays = list(itertools.islice(reconnect_delays(0.1, 2.0, random.Random(7)), 8))
    steps = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two the same
