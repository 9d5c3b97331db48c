"""Webhooks (Standard Webhooks, https://www.standardwebhooks.com): a principal's
subscriptions and what a lifecycle event makes of them.

- `WebhookSink` (an `db.sinks.EventSink`): in the transaction of a lifecycle event,
  one `WebhookDelivery` per webhook of the task's owner that subscribed to it (and one
  for the task's own `callback_url`, for `DEFAULT_EVENTS`), each with its DBOS
  workflow enqueued on `WEBHOOK_QUEUE` (`agents.integrations.deliveries` sends it).
- `WebhookService`: register, list and delete webhooks, read the delivery log, and
  redeliver, all scoped to a principal (another's webhook reads as missing).
- `signed_headers`: the `webhook-id`, `webhook-timestamp` and `webhook-signature`
  headers (HMAC-SHA256 over `id.timestamp.body`, the `standardwebhooks` package).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbos import DBOSClient, EnqueueOptions
from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook as Signer

from agents.integrations.addresses import resolve
from agents.integrations.lifecycle import DEFAULT_EVENTS, LifecycleEvent, lifecycle_event, payload
from db import VERSION
from db.engine import SessionFactory
from db.messages import (
    WEBHOOKS_PER_OWNER,
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    new_secret,
)
from db.models import AgentLog, Task

#: The DBOS queue webhook deliveries run on (apart from the tasks' queue, so a slow
#: receiver never holds a task's slot, nor a busy model a delivery).
WEBHOOK_QUEUE = "postassist_webhooks"
#: The DBOS workflow that delivers one `WebhookDelivery` (`deliveries.deliver_webhook`).
DELIVERY_WORKFLOW = "postassist.deliver_webhook"
#: Longest secret a caller may choose, in characters (`Webhook.secret`).
SECRET_MAX = 100
#: Most deliveries `WebhookService.deliveries` returns, newest first.
MAX_DELIVERIES = 100


@dataclass(frozen=True)
class WebhookConfig:
    """How deliveries run: `max_attempts` tries (`WEBHOOK_MAX_ATTEMPTS`), the first
    retry `retry_base` seconds after the first failure (`WEBHOOK_RETRY_BASE_SECONDS`),
    whether private addresses may be called (`WEBHOOK_ALLOW_PRIVATE`), and how many
    deliveries a worker sends at once (`WEBHOOK_CONCURRENCY`)."""

    max_attempts: int = 12
    retry_base: float = 5.0
    allow_private: bool = False
    concurrency: int = 8


class WebhookInputError(ValueError):
    """A webhook argument that cannot be taken; `field` names it (`url`, `events`,
    `secret`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class WebhookNotFoundError(LookupError):
    """No webhook (or delivery) with that id that this principal may see."""


class DeliveryInProgressError(RuntimeError):
    """A delivery that is still being tried cannot be redelivered."""


def check_secret(secret: str) -> str:
    """`secret` if Standard Webhooks can sign with it (`whsec_` and base64 of 24 to 64
    bytes); else `WebhookInputError` on `secret`."""
    text = secret.strip()
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except ValueError:
        key = b""
    if not text.startswith("whsec_") or len(text) > SECRET_MAX or not 24 <= len(key) <= 64:
        raise WebhookInputError(
            "secret", "secret: whsec_ and the base64 of 24 to 64 random bytes (omit it to get one)"
        )
    return text


def body(event_type: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
    """A delivery's JSON body, as Standard Webhooks recommends: `{"type", "timestamp",
    "data"}` (the event name, when it happened, `lifecycle.payload`)."""
    return {"type": event_type, "timestamp": occurred_at, "data": data}


def signed_headers(secret: str, message_id: str, content: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt sending `content` at `at` (UTC):
    `webhook-id` (the same on every retry), `webhook-timestamp` (Unix seconds of this
    attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`)."""
    at = at.astimezone(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, at, content),
    }


def enqueue_delivery(
    client: DBOSClient,
    sync_connection: Any,
    delivery_id: str,
    *,
    workflow_id: str | None = None,
    once: bool = False,
) -> None:
    """Enqueue the workflow that sends `delivery_id` on `WEBHOOK_QUEUE`, in the
    transaction of `sync_connection` (a SQLAlchemy sync connection: the caller's
    `AsyncConnection.run_sync`). Its workflow id is the delivery's own unless given;
    `once`: one try, no retries (a redelivery)."""
    options: EnqueueOptions = {
        "queue_name": WEBHOOK_QUEUE,
        "workflow_name": DELIVERY_WORKFLOW,
        "workflow_id": workflow_id or delivery_id,
        "app_version": VERSION,
    }
    client.enqueue_in_transaction(sync_connection, options, delivery_id, once)


class WebhookSink:
    """The `EventSink` that turns lifecycle events into webhook deliveries (see the
    module). Costs one indexed read of the owner's webhooks per lifecycle event."""

    def __init__(self, client: DBOSClient) -> None:
        self.client = client

    async def write(self, session: AsyncSession, task: Task, rows: Sequence[AgentLog]) -> None:
        """Add the deliveries of `rows` to `session`'s transaction and enqueue them."""
        # Core, not the ORM: this read runs on every status change, almost always to
        # find nothing (benchmarks/sinks.py).
        connection = await session.connection()
        found = await connection.execute(
            select(col(Webhook.id), col(Webhook.url), col(Webhook.events)).where(
                col(Webhook.owner) == task.owner
            )
        )
        hooks = found.all()
        deliveries = []
        for row in rows:
            event = lifecycle_event(row)
            if event is None:
                continue
            targets: list[tuple[str | None, str]] = [
                (hook.id, hook.url) for hook in hooks if event in hook.events
            ]
            if task.callback_url and event in DEFAULT_EVENTS:
                targets.append((None, task.callback_url))
            if not targets:
                continue
            data = payload(task, row)
            deliveries += [
                WebhookDelivery(
                    webhook_id=hook_id,
                    owner=task.owner,
                    task_id=task.id,
                    seq=row.seq,
                    event_type=event.value,
                    url=url,
                    payload=data,
                )
                for hook_id, url in targets
            ]
        if not deliveries:
            return
        session.add_all(deliveries)
        ids = [delivery.id for delivery in deliveries]

        def enqueue(sync: Any) -> None:
            for delivery_id in ids:
                enqueue_delivery(self.client, sync, delivery_id)

        await connection.run_sync(enqueue)


def _events(events: Sequence[LifecycleEvent] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or DEFAULT_EVENTS))
    return [LifecycleEvent(event).value for event in chosen]


class WebhookService:
    """A principal's webhooks and their deliveries (every method takes the `owner`; an
    admin's reads are its own too: a webhook is a secret-bearing subscription)."""

    def __init__(
        self, session_factory: SessionFactory, client: DBOSClient, config: WebhookConfig
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.config = config

    async def check_url(self, url: str, *, field: str = "url") -> str:
        """`url` if it may be called (`addresses.resolve` with this config); else
        `WebhookInputError` on `field`."""
        try:
            return (await resolve(url, allow_private=self.config.allow_private)).url
        except ValueError as exc:
            raise WebhookInputError(field, f"{field}: {exc}") from None

    async def register(
        self,
        owner: str,
        url: str,
        events: Sequence[LifecycleEvent] | None = None,
        secret: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Store a webhook of `owner` for `events` (`DEFAULT_EVENTS` when none) at
        `url`, signed with `secret` (generated when None); the row, secret included
        (the only time it is shown). Raises `WebhookInputError` for a URL that may not
        be called, a bad secret, or past `WEBHOOKS_PER_OWNER` webhooks."""
        signing = check_secret(secret) if secret is not None else new_secret()
        hook = Webhook(
            owner=owner,
            url=await self.check_url(url),
            events=_events(events),
            secret=signing,
            description=(description or "").strip()[:200] or None,
        )
        async with self.session_factory() as session:
            count = await session.scalar(
                select(func.count()).select_from(Webhook).where(col(Webhook.owner) == owner)
            )
            if (count or 0) >= WEBHOOKS_PER_OWNER:
                raise WebhookInputError(
                    "url",
                    f"url: a principal has at most {WEBHOOKS_PER_OWNER} webhooks; delete one first",
                )
            session.add(hook)
            await session.commit()
            await session.refresh(hook)
        return hook

    async def list(self, owner: str) -> list[Webhook]:
        """`owner`'s webhooks, oldest first."""
        async with self.session_factory() as session:
            found = await session.exec(
                select(Webhook)
                .where(col(Webhook.owner) == owner)
                .order_by(col(Webhook.created_at), col(Webhook.id))
            )
            return list(found.all())

    async def get(self, owner: str, webhook_id: str) -> Webhook:
        """`owner`'s webhook `webhook_id`; `WebhookNotFoundError` otherwise."""
        async with self.session_factory() as session:
            hook = await session.get(Webhook, webhook_id)
        if hook is None or hook.owner != owner:
            raise WebhookNotFoundError(webhook_id)
        return hook

    async def delete(self, owner: str, webhook_id: str) -> Webhook:
        """Delete `owner`'s webhook; its deliveries still waiting for a retry end
        FAILED ("webhook deleted"), its log stays readable per task. Returns the row.
        Raises `WebhookNotFoundError`."""
        async with self.session_factory() as session:
            hook = await session.get(Webhook, webhook_id)
            if hook is None or hook.owner != owner:
                raise WebhookNotFoundError(webhook_id)
            await session.delete(hook)
            await session.exec(  # type: ignore[call-overload]
                update(WebhookDelivery)
                .where(col(WebhookDelivery.webhook_id) == webhook_id)
                .where(col(WebhookDelivery.status) == DeliveryStatus.PENDING)
                .values(
                    status=DeliveryStatus.FAILED,
                    last_error="webhook deleted",
                    next_attempt_at=None,
                    updated_at=datetime.now(UTC),
                )
            )
            await session.commit()
        return hook

    async def deliveries(
        self,
        owner: str,
        *,
        webhook_id: str | None = None,
        task_id: str | None = None,
        limit: int = MAX_DELIVERIES,
    ) -> list[WebhookDelivery]:
        """`owner`'s deliveries, newest first, of one webhook (`WebhookNotFoundError`
        unless it is `owner`'s), of one task, or all; at most `limit`."""
        if webhook_id is not None:
            await self.get(owner, webhook_id)
        query = select(WebhookDelivery).where(col(WebhookDelivery.owner) == owner)
        if webhook_id is not None:
            query = query.where(col(WebhookDelivery.webhook_id) == webhook_id)
        if task_id is not None:
            query = query.where(col(WebhookDelivery.task_id) == task_id)
        query = query.order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id))
        async with self.session_factory() as session:
            found = await session.exec(query.limit(max(1, min(limit, MAX_DELIVERIES))))
            return list(found.all())

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
        """The attempts of each delivery, first first (one read for all of them)."""
        result: dict[str, list[WebhookAttempt]] = {key: [] for key in delivery_ids}
        if not delivery_ids:
            return result
        async with self.session_factory() as session:
            found = await session.exec(
                select(WebhookAttempt)
                .where(col(WebhookAttempt.delivery_id).in_(list(delivery_ids)))
                .order_by(col(WebhookAttempt.delivery_id), col(WebhookAttempt.attempt))
            )
            for attempt in found.all():
                result[attempt.delivery_id].append(attempt)
        return result

    async def redeliver(self, owner: str, delivery_id: str) -> WebhookDelivery:
        """Send `owner`'s delivery `delivery_id` once more (the same `webhook-id`, the
        next attempt number; one try, no further retries), in the background; the
        delivery, PENDING. Raises `WebhookNotFoundError` (also when its webhook was
        deleted) and `DeliveryInProgressError` while it is still PENDING."""
        async with self.session_factory() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.owner != owner:
                raise WebhookNotFoundError(delivery_id)
            if (
                delivery.webhook_id is not None
                and await session.get(Webhook, delivery.webhook_id) is None
            ):
                raise WebhookNotFoundError(delivery_id)
            moved = await session.exec(  # type: ignore[call-overload]
                update(WebhookDelivery)
                .where(col(WebhookDelivery.id) == delivery_id)
                .where(col(WebhookDelivery.status) != DeliveryStatus.PENDING)
                .values(
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
            )
            if moved.rowcount != 1:
                raise DeliveryInProgressError(
                    f"delivery {delivery_id} is still being tried (attempt "
                    f"{delivery.attempts + 1} is due at {delivery.next_attempt_at})"
                )
            connection = await session.connection()
            workflow_id = f"{delivery_id}:redeliver-{uuid.uuid4().hex[:12]}"
            await connection.run_sync(
                lambda sync: enqueue_delivery(
                    self.client, sync, delivery_id, workflow_id=workflow_id, once=True
                )
            )
            await session.commit()
            await session.refresh(delivery)
        return delivery


__all__ = [
    "DELIVERY_WORKFLOW",
    "MAX_DELIVERIES",
    "WEBHOOK_QUEUE",
    "DeliveryInProgressError",
    "WebhookConfig",
    "WebhookInputError",
    "WebhookNotFoundError",
    "WebhookService",
    "WebhookSink",
    "body",
    "check_secret",
    "enqueue_delivery",
    "signed_headers",
]
