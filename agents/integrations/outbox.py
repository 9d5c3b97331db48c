"""The transactional outbox of broker messages: lifecycle events are written as
`OutboxMessage` rows in the transaction of the event (`OutboxSink`), and one publisher
at a time sends them (`OutboxPublisher`, run by `OutboxPlugin` in every worker).

- Order: rows are sent in `id` order. A task's events take its row lock in turn (`seq`),
  so its outbox rows are inserted, and committed, in `seq` order: `id` order is each
  task's `seq` order. A send that fails stops the round: nothing after it goes out
  before it, so an outage delays a task's events but never reorders them.
- A row the broker always refuses (too large, say) would stop every task behind it:
  once a row has failed `HOLD_AFTER` (50) times, and another task's row goes through
  in the same round (the broker is up), its task's rows wait behind it and the other
  tasks' rows go on, each task still in `seq` order. While nothing goes through (an
  outage) a round still stops at the second failure, so nothing is reordered and no
  round tries every row. A held row is tried every round, for ever (`last_error`
  says why); only if held tasks' rows fill a whole `BATCH` does everything wait.
- Acknowledgement: a row is marked `sent_at` only after the broker acknowledged it
  (`BrokerClient.publish`); a failed try adds to `attempts` and sets `last_error`, and
  the row is tried again every `publish_interval` seconds, for ever.
- Repeats: the outbox sends a row again only when it was sent but the mark did not
  commit (a crash, the database lost in between); the message id is the same, so NATS
  JetStream drops it (`Nats-Msg-Id` within the stream's duplicate window) and a
  RabbitMQ or Kafka consumer drops it by `message_id` / the CloudEvent id.
- One publisher: the worker holding the lease row (`outbox_lease.PublisherLease`,
  `LEASE_SECONDS` = 15 s, renewed as it goes); the others try to take it every
  `STANDBY_POLL` seconds. Before each publish the holder checks it still holds the
  lease for longer than the publish may take, so a publisher that lost it stops
  sending before another may start. A worker that vanishes (no TCP reset) is taken
  over within `LEASE_SECONDS + STANDBY_POLL` (16 s); one that stops cleanly releases
  the lease at once.
- Wake-ups: the publisher sends as soon as a task is queued (the `queue` channel) or
  changes status (`tasks`), and polls every `publish_interval` seconds besides (a lost
  wake-up, another process's bus).
- Sent rows are kept `keep_sent_days` (7) days for inspection, then deleted by a sweep
  every `SWEEP_EVERY` seconds (the `sent_at` index finds them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from broadcaster import Broadcast
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.integrations.broker import (
    BrokerConfig,
    Outgoing,
    encode,
    event_destination,
    lifecycle_cloudevent,
)
from agents.integrations.broker_client import BrokerClient
from agents.integrations.lifecycle import lifecycle_event
from agents.integrations.outbox_lease import LEASE_SECONDS, STANDBY_POLL, PublisherLease
from agents.telemetry.metrics import BROKER_MESSAGES
from db.event_log import QUEUE_CHANNEL, TASKS_CHANNEL
from db.messages import OutboxMessage
from db.models import AgentLog, Task

logger = logging.getLogger(__name__)

#: Failed tries after which a row's task is held back so other tasks' rows go on.
HOLD_AFTER = 50
#: Rows one round reads and sends at most (a fuller outbox takes more rounds at once).
BATCH = 200
#: Seconds between sweeps of rows sent more than `keep_sent_days` ago.
SWEEP_EVERY = 3600.0
#: Consecutive failed rounds after which the broker connection is opened anew.
RECONNECT_AFTER = 20


class OutboxSink:
    """The `EventSink` that writes one `OutboxMessage` per lifecycle row (the whole
    structured CloudEvent as `payload`, `lifecycle_cloudevent`); installed only when a
    broker is configured. Costs one INSERT per lifecycle event, no read."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config

    async def write(self, session: AsyncSession, task: Task, rows: Sequence[AgentLog]) -> None:
        """Add the outbox rows of `rows` to `session`'s transaction."""
        for row in rows:
            event = lifecycle_event(row)
            cloudevent = lifecycle_cloudevent(task, row, source=self.config.source)
            if event is None or cloudevent is None:
                continue
            session.add(
                OutboxMessage(
                    message_id=cloudevent["id"],
                    task_id=task.id,
                    seq=row.seq,
                    type=cloudevent["type"],
                    subject=event_destination(self.config, event.value),
                    payload=cloudevent,
                )
            )


@dataclass
class OutboxPublisher:
    """Sends the outbox (see the module) through `client_factory()`'s connection while
    it holds `lease` (`lease_seconds` long). `sent` counts the rows it marked sent;
    `failures` its failed tries (both for the process's lifetime: tests and
    benchmarks read them)."""

    engine: AsyncEngine
    config: BrokerConfig
    client_factory: Callable[[], BrokerClient] | None = None
    lease_seconds: float = LEASE_SECONDS
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    failures: int = 0
    client: BrokerClient | None = None
    lease: PublisherLease = field(init=False)
    _failed_rounds: int = 0
    _swept_at: float = 0.0

    def __post_init__(self) -> None:
        seconds = max(self.lease_seconds, 3 * self.config.publish_timeout)
        self.lease = PublisherLease(self.engine, seconds)

    async def run(self) -> None:
        """Publish for ever while holding the lease, stand by otherwise (cancel to
        stop); never raises otherwise."""
        while True:
            try:
                if not await self.lease.take():
                    await asyncio.sleep(STANDBY_POLL)
                    continue
                while await self.lease.keep(0.0):
                    if not await self.round():
                        await self._wait()
                await self._drop_client()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox publisher failed; starting again")
                await self._drop_client()
                await asyncio.sleep(self.config.publish_interval)

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.publish_interval):
                await self.wake.wait()
        self.wake.clear()

    async def round(self) -> bool:
        """Send the unsent rows in `id` order (at most `BATCH`) while the lease holds,
        until one fails (see the module for held rows); mark the acknowledged ones
        sent. True when the batch was full and went through (more may wait)."""
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(
                        OutboxMessage.id, OutboxMessage.message_id, OutboxMessage.subject,
                        OutboxMessage.task_id, OutboxMessage.payload, OutboxMessage.attempts,
                    )
                    .where(col(OutboxMessage.sent_at).is_(None))
                    .order_by(col(OutboxMessage.id))
                    .limit(BATCH)
                )
            ).all()  # fmt: skip
            await connection.commit()  # SQLite: no read transaction held while publishing
            await self._sweep(connection)
            if not rows:
                return False
            acked, failed, stopped = await self._send(rows)
            await self._record(connection, acked, failed)
        return not stopped and len(rows) == BATCH

    async def _send(self, rows: Sequence[Any]) -> tuple[list[int], list[tuple[int, str]], bool]:
        """Publish `rows` in order: the ids acked, the (id, error) of those that failed,
        and whether the round stopped early (a failure, the lease)."""
        acked: list[int] = []
        failed: list[tuple[int, str]] = []
        held: set[str] = set()
        holding = False  # a task is held back before anything went through this round
        try:
            client = await self._client()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return acked, [(rows[0].id, f"{type(exc).__name__}: {exc}"[:1000])], True
        for row in rows:
            if row.task_id in held:
                continue
            if not await self.lease.keep(self.config.publish_timeout):
                return acked, failed, True
            try:
                await client.publish(
                    Outgoing(row.subject, encode(row.payload), row.message_id, row.task_id)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed.append((row.id, f"{type(exc).__name__}: {exc}"[:1000]))
                if row.attempts + 1 >= HOLD_AFTER and (acked or not holding):
                    held.add(row.task_id)
                    holding = holding or not acked
                    continue
                return acked, failed, True
            acked.append(row.id)
        return acked, failed, False

    async def _record(
        self, connection: AsyncConnection, acked: list[int], failed: list[tuple[int, str]]
    ) -> None:
        now = datetime.now(UTC)
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        if acked:
            await connection.execute(
                update(table)
                .where(table.c.id.in_(acked))
                .values(sent_at=now, attempts=table.c.attempts + 1)
            )
        for row_id, error in failed:
            await connection.execute(
                update(table)
                .where(table.c.id == row_id)
                .values(attempts=table.c.attempts + 1, last_error=error)
            )
        await connection.commit()
        self.sent += len(acked)
        BROKER_MESSAGES.labels("out", "acked").inc(len(acked))
        if not failed:
            self._failed_rounds = 0
            return
        self.failures += len(failed)
        BROKER_MESSAGES.labels("out", "failed").inc(len(failed))
        self._failed_rounds = 0 if acked else self._failed_rounds + 1
        for row_id, error in failed:
            logger.warning("outbox: the broker did not take message %s: %s", row_id, error)
        if self._failed_rounds and self._failed_rounds % RECONNECT_AFTER == 0:
            await self._drop_client()
        await asyncio.sleep(self.config.publish_interval)

    async def _client(self) -> BrokerClient:
        if self.client is None:
            client = (self.client_factory or (lambda: BrokerClient(self.config)))()
            try:
                async with asyncio.timeout(self.config.publish_timeout):
                    await client.start()
            except BaseException:
                await client.close()
                raise
            self.client = client
        return self.client

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def _sweep(self, connection: AsyncConnection) -> None:
        if time.monotonic() - self._swept_at < SWEEP_EVERY:
            return
        self._swept_at = time.monotonic()
        before = datetime.now(UTC) - timedelta(days=self.config.keep_sent_days)
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        result: Any = await connection.execute(delete(table).where(table.c.sent_at < before))
        await connection.commit()
        if result.rowcount:
            logger.info("outbox: deleted %d messages sent before %s", result.rowcount, before)

    async def close(self) -> None:
        """Close the broker connection and release the lease."""
        await self._drop_client()
        await self.lease.release()


async def _wake_on(broadcast: Broadcast, channel: str, wake: asyncio.Event, retry: float) -> None:
    """Set `wake` on every notice on `channel`; a bus that fails is subscribed again."""
    while True:
        try:
            async with broadcast.subscribe(channel) as subscriber:
                while True:
                    await subscriber.get()
                    wake.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("outbox wake-ups on %s stopped; subscribing again", channel)
            await asyncio.sleep(retry)


@dataclass
class OutboxPlugin:
    """The worker plugin (`agents.runtime.worker.WorkerPlugin`) that runs the outbox's
    publisher for the worker's lifetime, woken by `broadcast`'s `queue` and `tasks`
    channels. `publisher` is the running one (None outside `running()`)."""

    engine: AsyncEngine
    config: BrokerConfig
    broadcast: Broadcast
    publisher: OutboxPublisher | None = None

    def prepare(self) -> None:
        """Nothing runs before DBOS launches."""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        publisher = OutboxPublisher(self.engine, self.config)
        self.publisher = publisher
        interval = self.config.publish_interval
        loops = [
            asyncio.create_task(publisher.run(), name="outbox-publisher"),
            *(
                asyncio.create_task(
                    _wake_on(self.broadcast, channel, publisher.wake, interval),
                    name=f"outbox-wake-{channel}",
                )
                for channel in (QUEUE_CHANNEL, TASKS_CHANNEL)
            ),
        ]
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.wait(loops)
            await publisher.close()
            self.publisher = None


__all__ = ["HOLD_AFTER", "OutboxPlugin", "OutboxPublisher", "OutboxSink"]
