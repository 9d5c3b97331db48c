"""The transactional outbox of broker messages: lifecycle events are written as
`OutboxMessage` rows in the transaction of the event (`OutboxSink`), and one publisher
at a time sends them (`OutboxPublisher`, run by `OutboxPlugin` in every worker).

- Order: rows are sent in `id` order. A task's events take its row lock in turn (`seq`),
  so its outbox rows are inserted, and committed, in `seq` order: `id` order is each
  task's `seq` order. A send that fails stops the round: nothing after it goes out
  before it, so an outage delays a task's events but never reorders them.
- Acknowledgement: a row is marked `sent_at` only after the broker acknowledged it
  (`BrokerClient.publish`); a failed try adds to `attempts` and sets `last_error`, and
  the row is tried again every `publish_interval` seconds, for ever.
- Repeats: the outbox sends a row again only when it was sent but the mark did not
  commit (a crash, the lock's connection lost in between); the message id is the same,
  so NATS JetStream drops it (`Nats-Msg-Id` within the stream's duplicate window) and a
  RabbitMQ or Kafka consumer drops it by `message_id` / the CloudEvent id.
- One publisher: on PostgreSQL the PostgreSQL advisory lock `OUTBOX_LOCK`, held by the
  publisher's own connection for as long as it publishes (the rows are read and marked
  through that connection, so a publisher that lost its lock cannot mark anything); the
  other workers try to take it every `STANDBY_POLL` seconds. SQLite has one worker by
  design: no lock.
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
from sqlalchemy import delete, select, text, update
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
from db.event_log import QUEUE_CHANNEL, TASKS_CHANNEL
from db.messages import OutboxMessage
from db.models import AgentLog, Task

logger = logging.getLogger(__name__)

#: The PostgreSQL advisory lock the publishing worker holds ("postbox").
OUTBOX_LOCK = 0x706F7374626F78
#: Seconds between a standby worker's tries of `OUTBOX_LOCK`.
STANDBY_POLL = 1.0
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
    it holds the lease. `sent` counts the rows it marked sent; `failures` its failed
    tries (both for the process's lifetime: tests and benchmarks read them)."""

    engine: AsyncEngine
    config: BrokerConfig
    client_factory: Callable[[], BrokerClient] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    failures: int = 0
    client: BrokerClient | None = None
    _failed_rounds: int = 0
    _swept_at: float = 0.0

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def run(self) -> None:
        """Publish for ever (cancel to stop); never raises otherwise."""
        while True:
            try:
                async with self._lease() as connection:
                    if connection is None:
                        await asyncio.sleep(STANDBY_POLL)
                        continue
                    while True:
                        full = await self.round(connection)
                        if not full:
                            await self._wait()
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

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[AsyncConnection | None]:
        """The connection that holds the publisher's lock (None: another worker has it)."""
        async with self.engine.connect() as connection:
            if not self.sqlite:
                locked = await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": OUTBOX_LOCK}
                )
                await connection.commit()
                if not locked:
                    yield None
                    return
            try:
                yield connection
            finally:
                if not self.sqlite:
                    try:
                        await connection.rollback()
                        await connection.execute(
                            text("SELECT pg_advisory_unlock(:key)"), {"key": OUTBOX_LOCK}
                        )
                        await connection.commit()
                    except Exception:  # never back to the pool still holding the lock
                        await connection.invalidate()

    async def round(self, connection: AsyncConnection) -> bool:
        """Send the unsent rows in `id` order (at most `BATCH`) until one fails; mark the
        acknowledged ones sent. True when the batch was full (more may wait)."""
        rows = (
            await connection.execute(
                select(
                    OutboxMessage.id, OutboxMessage.message_id, OutboxMessage.subject,
                    OutboxMessage.task_id, OutboxMessage.payload,
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
        acked: list[int] = []
        failed: tuple[int, str] | None = None
        try:
            client = await self._client()
            for row in rows:
                await client.publish(
                    Outgoing(row.subject, encode(row.payload), row.message_id, row.task_id)
                )
                acked.append(row.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failed = (rows[len(acked)].id, f"{type(exc).__name__}: {exc}"[:1000])
        await self._record(connection, acked, failed)
        return failed is None and len(rows) == BATCH

    async def _record(
        self, connection: AsyncConnection, acked: list[int], failed: tuple[int, str] | None
    ) -> None:
        now = datetime.now(UTC)
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        if acked:
            await connection.execute(
                update(table)
                .where(table.c.id.in_(acked))
                .values(sent_at=now, attempts=table.c.attempts + 1)
            )
        if failed is not None:
            await connection.execute(
                update(table)
                .where(table.c.id == failed[0])
                .values(attempts=table.c.attempts + 1, last_error=failed[1])
            )
        await connection.commit()
        self.sent += len(acked)
        if failed is None:
            self._failed_rounds = 0
            return
        self.failures += 1
        self._failed_rounds += 1
        logger.warning("outbox: the broker did not take message %s: %s", *failed)
        if self._failed_rounds % RECONNECT_AFTER == 0:
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
        """Close the broker connection."""
        await self._drop_client()


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


__all__ = ["OUTBOX_LOCK", "OutboxPlugin", "OutboxPublisher", "OutboxSink"]
