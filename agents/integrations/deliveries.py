"""Sending webhook deliveries: one DBOS workflow per `WebhookDelivery`
(`deliver_webhook`, enqueued with the event that causes it), each attempt one DBOS
step (an HTTP POST, its `WebhookAttempt` row and the delivery's new state), the waits
between them durable `DBOS.sleep_async`s, so a restart, a crash or a takeover resumes
the schedule where it was and the receiver sees the same `webhook-id` on every try.

The schedule (`retry_delay`): after the n-th failed attempt, wait `retry_base * 3**(n-1)`
seconds (5 s, 15 s, 45 s, ... with the default base), at most `MAX_RETRY_WAIT` (6 h),
each +-`JITTER` (20%) so receivers that came back are not hit by every sender at once;
give up after `max_attempts` tries or once the next would come `GIVE_UP_AFTER` (24 h)
after the event. With the defaults, 12 tries span about 22.6 h.

Each attempt is one signed POST (`webhook_http.WebhookSender`: the address guard at
every attempt, no redirects, 10 s, 64 KiB); a 2xx answer is success. The attempt's
bookkeeping (its row, the delivery's state) is retried by DBOS within the step and,
past that (a database outage), by the workflow itself every `BOOKKEEPING_RETRY`
seconds: a delivery never stays PENDING without a workflow that will try it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dbos import DBOS
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.integrations.webhook_http import Message, Outcome, WebhookSender
from agents.integrations.webhooks import DELIVERY_WORKFLOW, WEBHOOK_QUEUE, WebhookConfig
from agents.telemetry.metrics import WEBHOOK_DELIVERIES, webhook_result
from db.engine import SessionFactory
from db.messages import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from db.models import Task

logger = logging.getLogger(__name__)

#: Longest wait between two attempts, in seconds.
MAX_RETRY_WAIT = 6 * 3600.0
#: Each wait is its nominal value times a random factor in [1 - JITTER, 1 + JITTER].
JITTER = 0.2
#: A delivery is given up once its next attempt would come this long after the event.
GIVE_UP_AFTER = timedelta(hours=24)
#: Seconds a delivery workflow waits (durably) when an attempt's bookkeeping failed
#: past the step's own retries, and how many such waits in a row it makes at most
#: (a day's worth: then it ends, logged, and the delivery can be redelivered).
BOOKKEEPING_RETRY = 60.0
BOOKKEEPING_TRIES = 1440


def retry_delay(attempt: int, base: float, *, jitter: float = JITTER) -> float:
    """Seconds to wait after failed attempt `attempt` (1 up): `base * 3**(attempt-1)`,
    at most `MAX_RETRY_WAIT`, times a random factor within +-`jitter`."""
    nominal = min(base * 3 ** (attempt - 1), MAX_RETRY_WAIT)
    return nominal * random.uniform(1 - jitter, 1 + jitter)


@dataclass
class Deliverer:
    """Sends this worker's webhook deliveries through `sender` (installed by
    `WebhookPlugin`); at most `config.concurrency` HTTP attempts at once (a delivery
    waiting for its retry holds no slot)."""

    session_factory: SessionFactory
    config: WebhookConfig
    sender: WebhookSender
    slots: asyncio.Semaphore = field(init=False)
    #: The delivery workflows running (or waiting for a retry) in this process.
    running: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.config.concurrency)

    #: Set by `stop`: a delivery workflow that starts afterwards (DBOS may still dequeue
    #: one while the worker drains) stops at once, as a cancelled one would.
    stopping: bool = False

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """Count the calling workflow among `running` while it runs, so a shutdown
        stops it (`stop`): it then resumes where DBOS recorded it, not twice. Raises
        `CancelledError` once stopping (the workflow stays PENDING in DBOS)."""
        if self.stopping:
            raise asyncio.CancelledError
        current = asyncio.current_task()
        assert current is not None
        self.running.add(current)
        try:
            yield
        finally:
            self.running.discard(current)

    async def stop(self) -> None:
        """Cancel the running delivery workflows (mid-wait or mid-attempt) and wait for
        them: DBOS resumes them at the next start, or on the worker that takes over."""
        self.stopping = True
        for workflow in list(self.running):
            workflow.cancel()
        if self.running:
            await asyncio.wait(list(self.running), timeout=5)

    async def attempt(self, delivery_id: str, *, once: bool = False) -> float | None:
        """Make the next attempt of `delivery_id` if it is PENDING; the seconds to wait
        before the one after, or None when the delivery ended (or `once`)."""
        async with self.session_factory() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.PENDING:
                return None
            secret = await self._secret(session, delivery)
        if secret is None:
            await self._end(delivery_id, "webhook deleted")
            return None
        number = delivery.attempts + 1
        message = Message(delivery.id, delivery.event_type, delivery.payload, delivery.url)
        async with self.slots:  # signed inside: a wait for a slot never ages its timestamp
            outcome = await self.sender.send(message, secret)
        started = outcome.sent_at
        wait = None
        if outcome.error is not None and not once and number < self.config.max_attempts:
            wait = retry_delay(number, self.config.retry_base)
            if started + timedelta(seconds=wait) > delivery.created_at + GIVE_UP_AFTER:
                wait = None
        return await self._record(delivery_id, number, started, outcome, wait)

    @staticmethod
    async def _secret(session: AsyncSession, delivery: WebhookDelivery) -> str | None:
        """The key that signs `delivery`: its webhook's secret, or its task's
        `callback_secret`; None once the webhook (or task) is gone."""
        if delivery.webhook_id is None:
            task = await session.get(Task, delivery.task_id)
            return task.callback_secret if task is not None else None
        hook = await session.get(Webhook, delivery.webhook_id)
        return hook.secret if hook is not None else None

    async def _record(
        self,
        delivery_id: str,
        number: int,
        started: datetime,
        outcome: Outcome,
        wait: float | None,
    ) -> float | None:
        """Store the attempt and the delivery's new state; the wait before the next
        attempt (None: the delivery ended, here or meanwhile)."""
        now = datetime.now(UTC)
        async with self.session_factory() as session:
            session.add(
                WebhookAttempt(
                    delivery_id=delivery_id,
                    attempt=number,
                    started_at=started,
                    status_code=outcome.status_code,
                    latency_ms=outcome.latency_ms,
                    error=outcome.error,
                )
            )
            delivery = await session.get(WebhookDelivery, delivery_id)
            ended = delivery is None or delivery.status != DeliveryStatus.PENDING
            if delivery is not None and delivery.status != DeliveryStatus.PENDING:
                wait = None  # ended meanwhile (its webhook was deleted): it stays so
            elif delivery is not None:
                delivery.attempts = number
                delivery.last_status_code = outcome.status_code
                delivery.last_error = outcome.error
                delivery.updated_at = now
                if outcome.error is None:
                    delivery.status = DeliveryStatus.SUCCEEDED
                elif wait is None:
                    delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = (
                    now + timedelta(seconds=wait) if wait is not None else None
                )
                session.add(delivery)
            await session.commit()
        result = webhook_result(
            succeeded=outcome.error is None, retrying=wait is not None, ended=ended
        )
        WEBHOOK_DELIVERIES.labels(result).inc()
        return wait

    async def _end(self, delivery_id: str, reason: str) -> None:
        async with self.session_factory() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is not None and delivery.status == DeliveryStatus.PENDING:
                delivery.status = DeliveryStatus.FAILED
                delivery.last_error = reason
                delivery.next_attempt_at = None
                delivery.updated_at = datetime.now(UTC)
                session.add(delivery)
                await session.commit()


_deliverer: Deliverer | None = None


def installed() -> Deliverer:
    """The deliverer `WebhookPlugin` installed; `RuntimeError` in a process without one."""
    if _deliverer is None:
        raise RuntimeError("no webhook deliverer runs in this process")
    return _deliverer


@DBOS.workflow(name=DELIVERY_WORKFLOW)
async def deliver_webhook(delivery_id: str, once: bool = False) -> None:
    """The durable delivery of one `WebhookDelivery`: attempts with durable waits
    between them until it succeeds or is given up (`once`: one attempt)."""
    failures = 0
    with installed().tracked():
        while True:
            try:
                wait = await attempt_delivery(delivery_id, once)
                failures = 0
            except Exception:  # the bookkeeping failed past the step's retries
                failures += 1
                if failures >= BOOKKEEPING_TRIES:
                    logger.error("webhook delivery %s: giving up its bookkeeping", delivery_id)
                    return
                logger.exception("webhook delivery %s: trying again", delivery_id)
                wait = BOOKKEEPING_RETRY
            if wait is None:
                return
            await DBOS.sleep_async(wait)


# A database error in an attempt's bookkeeping is retried by DBOS a few times here, then
# by the workflow; the HTTP failure itself is the schedule's, not DBOS's, to retry.
@DBOS.step(
    name="postassist.webhook_attempt",
    retries_allowed=True,
    max_attempts=5,
    interval_seconds=1.0,
    backoff_rate=2.0,
)
async def attempt_delivery(delivery_id: str, once: bool = False) -> float | None:
    """One attempt of `delivery_id` (`Deliverer.attempt`)."""
    return await installed().attempt(delivery_id, once=once)


@dataclass
class WebhookPlugin:
    """The worker plugin (`agents.runtime.worker.WorkerPlugin`) that sends webhooks:
    installs the `Deliverer` and its HTTP client before DBOS launches (a recovered
    delivery may start at launch), then registers `WEBHOOK_QUEUE` (no DBOS concurrency
    limit: a waiting retry would hold a slot; the deliverer's own semaphore bounds the
    HTTP attempts); on exit stops the deliveries and closes the client."""

    session_factory: SessionFactory
    config: WebhookConfig
    queue_poll: float = 0.5

    def prepare(self) -> None:
        global _deliverer
        sender = WebhookSender(
            allow_private=self.config.allow_private, max_connections=self.config.concurrency
        )
        _deliverer = Deliverer(self.session_factory, self.config, sender)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        deliverer = installed()
        try:
            await DBOS.register_queue_async(
                WEBHOOK_QUEUE, polling_interval_sec=self.queue_poll, on_conflict="always_update"
            )
            yield
        finally:
            await deliverer.stop()  # it stays installed, stopping, until the next start
            await deliverer.sender.aclose()


__all__ = [
    "GIVE_UP_AFTER",
    "MAX_RETRY_WAIT",
    "Deliverer",
    "WebhookPlugin",
    "deliver_webhook",
    "retry_delay",
]
