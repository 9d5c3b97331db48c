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

Each attempt: the URL's host is resolved and checked again (`addresses.resolve`; the
connection goes to the checked address, with the Host header and TLS name of the URL:
no second lookup, no DNS rebinding), no redirect is followed (a 3xx is a failure), the
whole attempt is bounded by `ATTEMPT_TIMEOUT` (10 s) and at most `MAX_RESPONSE_BYTES`
(64 KiB) of the answer is read. A 2xx answer is success.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from dbos import DBOS
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.integrations.addresses import AddressRefusedError, resolve
from agents.integrations.webhooks import (
    DELIVERY_WORKFLOW,
    WEBHOOK_QUEUE,
    WebhookConfig,
    body,
    signed_headers,
)
from agents.telemetry.metrics import WEBHOOK_DELIVERIES, webhook_result
from db.engine import SessionFactory
from db.messages import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from db.models import Task

logger = logging.getLogger(__name__)

#: Seconds one attempt may take, connection and answer included (Standard Webhooks
#: and most senders allow 10-15 s; a receiver should answer at once and work later).
ATTEMPT_TIMEOUT = 10.0
#: Bytes of an answer read at most; the rest is dropped.
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of a failed answer's body kept in `WebhookAttempt.error`.
ERROR_BODY_CHARS = 200
#: Longest wait between two attempts, in seconds.
MAX_RETRY_WAIT = 6 * 3600.0
#: Each wait is its nominal value times a random factor in [1 - JITTER, 1 + JITTER].
JITTER = 0.2
#: A delivery is given up once its next attempt would come this long after the event.
GIVE_UP_AFTER = timedelta(hours=24)
USER_AGENT = "PostAssist-Webhooks/1"


def retry_delay(attempt: int, base: float, *, jitter: float = JITTER) -> float:
    """Seconds to wait after failed attempt `attempt` (1 up): `base * 3**(attempt-1)`,
    at most `MAX_RETRY_WAIT`, times a random factor within +-`jitter`."""
    nominal = min(base * 3 ** (attempt - 1), MAX_RETRY_WAIT)
    return nominal * random.uniform(1 - jitter, 1 + jitter)


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: the answer's `status_code` (None: none came), the `error`
    (None: success) and how long it took (`latency_ms`)."""

    status_code: int | None
    error: str | None
    latency_ms: float


@dataclass
class Deliverer:
    """Sends this worker's webhook deliveries (installed by `WebhookPlugin`); at most
    `config.concurrency` HTTP attempts at once (a delivery waiting for its retry holds
    no slot)."""

    session_factory: SessionFactory
    config: WebhookConfig
    http: httpx.AsyncClient | None = None
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
        started = datetime.now(UTC)
        async with self.slots:
            outcome = await self._send(delivery, secret, started)
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

    async def _send(self, delivery: WebhookDelivery, secret: str, at: datetime) -> Outcome:
        content = json.dumps(
            body(delivery.event_type, str(delivery.payload.get("occurredAt")), delivery.payload),
            separators=(",", ":"),
        )
        headers = {
            **signed_headers(secret, delivery.id, content, at),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        start = time.perf_counter()
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                return await self._post(delivery.url, content, headers, start)
        except TimeoutError:
            return Outcome(None, f"no answer within {ATTEMPT_TIMEOUT:g} s", _ms(start))
        except AddressRefusedError as exc:
            return Outcome(None, f"address refused: {exc}", _ms(start))
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], _ms(start))

    async def _post(self, url: str, content: str, headers: dict[str, str], start: float) -> Outcome:
        target = await resolve(url, allow_private=self.config.allow_private)
        parts = urlsplit(target.url)
        address = target.addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{target.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        headers = {**headers, "host": parts.netloc.rpartition("@")[2]}
        extensions = {"sni_hostname": target.host} if parts.scheme.lower() == "https" else {}
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        if self.http is None:
            raise RuntimeError("the worker is stopping: the delivery resumes when it is back")
        request = self.http.build_request(
            "POST", pinned, content=content, headers=headers, extensions=extensions
        )
        basic = httpx.BasicAuth(*auth) if auth is not None else None
        response = await self.http.send(request, stream=True, auth=basic)
        try:
            answer = bytearray()
            async for chunk in response.aiter_raw():
                answer += chunk
                if len(answer) >= MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(code, None, _ms(start))
        if 300 <= code < 400:
            where = response.headers.get("location", "")
            return Outcome(code, f"HTTP {code}: redirect to {where!r} not followed", _ms(start))
        text = bytes(answer[: ERROR_BODY_CHARS * 4]).decode("utf-8", "replace")[:ERROR_BODY_CHARS]
        return Outcome(code, f"HTTP {code}: {text}".strip(), _ms(start))

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


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


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
    with installed().tracked():
        while (wait := await attempt_delivery(delivery_id, once)) is not None:
            await DBOS.sleep_async(wait)


# A database error in an attempt's bookkeeping is retried by DBOS (a second, fifth...);
# the HTTP failure itself is the schedule's, not DBOS's, to retry.
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
    installs the `Deliverer` before DBOS launches, then registers `WEBHOOK_QUEUE` (no
    DBOS concurrency limit: a waiting retry would hold a slot; the deliverer's own
    semaphore bounds the HTTP attempts) and holds one HTTP client for the worker's life."""

    session_factory: SessionFactory
    config: WebhookConfig
    queue_poll: float = 0.5

    def prepare(self) -> None:
        global _deliverer
        _deliverer = Deliverer(self.session_factory, self.config)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        deliverer = installed()
        limits = httpx.Limits(max_connections=self.config.concurrency * 2)
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=ATTEMPT_TIMEOUT, limits=limits, trust_env=False
        ) as client:
            deliverer.http = client
            await DBOS.register_queue_async(
                WEBHOOK_QUEUE, polling_interval_sec=self.queue_poll, on_conflict="always_update"
            )
            try:
                yield
            finally:
                await deliverer.stop()  # it stays installed, stopping, until the next start
                deliverer.http = None


__all__ = [
    "ATTEMPT_TIMEOUT",
    "GIVE_UP_AFTER",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_WAIT",
    "Deliverer",
    "Outcome",
    "WebhookPlugin",
    "deliver_webhook",
    "retry_delay",
]
