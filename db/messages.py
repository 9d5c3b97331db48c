"""What leaves the service for other systems, stored with the event that causes it:
webhook subscriptions (`Webhook`), one delivery per webhook and event
(`WebhookDelivery`) with every attempt (`WebhookAttempt`), and the broker outbox
(`OutboxMessage`, with its publisher's lease `OutboxLease`). Rows are written in the
transaction of the lifecycle event they report (`db.event_log.EventSink`), so a
committed event always has its messages and a rolled-back one has none."""

from __future__ import annotations

import base64
import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from db.models import URL_MAX, UTCDateTime, new_id, utcnow

#: Webhooks one principal may register (each status change reads them all).
WEBHOOKS_PER_OWNER = 20
#: Random bytes in a generated signing secret: 256 bits, HMAC-SHA256's key size.
SECRET_BYTES = 32


def new_secret() -> str:
    """A new webhook signing secret: `whsec_` and `SECRET_BYTES` random bytes in base64
    (Standard Webhooks' form)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery is: PENDING (being tried, or waiting for its next
    attempt), SUCCEEDED (a 2xx answer) or FAILED (out of attempts or time, or its
    webhook was deleted)."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Webhook(SQLModel, table=True):
    """A principal's subscription: POST the events named in `events` (lifecycle event
    names, `agents.integrations.lifecycle`) of its own tasks to `url`, signed with
    `secret` (Standard Webhooks' `whsec_<base64>`)."""

    __tablename__ = "webhook"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner: str = Field(index=True, max_length=255)
    url: str = Field(max_length=URL_MAX, sa_type=Text)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=100)
    description: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


def new_message_id() -> str:
    """A webhook message id: `msg_` and 32 hex characters (Standard Webhooks' `webhook-id`)."""
    return f"msg_{new_id()}"


class WebhookDelivery(SQLModel, table=True):
    """One event of one task to one URL: a registered webhook's (`webhook_id`) or the
    task's own `callbackUrl` (`webhook_id` None). `id` is the `webhook-id` header of
    every attempt, so a receiver drops repeats by it; `payload` is the body's `data`,
    fixed when the event committed. `attempts` counts the tries so far, `next_attempt_at`
    is when the next is due (None once it ended); `last_status_code` / `last_error` are
    the newest attempt's outcome."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_webhook_id_created_at", "webhook_id", "created_at"),
    )

    id: str = Field(default_factory=new_message_id, primary_key=True, max_length=40)
    webhook_id: str | None = Field(default=None, max_length=32)
    owner: str = Field(max_length=255)
    task_id: str = Field(index=True, max_length=32)
    seq: int
    event_type: str = Field(max_length=64)
    url: str = Field(max_length=URL_MAX, sa_type=Text)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: its number (1 up), when it started, the answer's
    status code (None: no answer), how long it took (milliseconds) and what went wrong
    (None for a 2xx)."""

    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(index=True, max_length=40)
    attempt: int
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status_code: int | None = None
    latency_ms: float
    error: str | None = Field(default=None, sa_column=Column(Text))


class OutboxMessage(SQLModel, table=True):
    """A lifecycle event waiting for the message broker (`BROKER_URL`): `message_id` is
    the CloudEvent id (`<task id>:<seq>`, unique), `subject` where it goes, `payload`
    the whole CloudEvent (structured JSON). `sent_at` is set once the broker acknowledged
    it; `attempts` / `last_error` count and explain the failed sends before. Rows are
    sent in `id` order, so each task's in `seq` order."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, max_length=100)
    task_id: str = Field(max_length=32)
    seq: int
    type: str = Field(max_length=100)
    subject: str = Field(max_length=255)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class OutboxLease(SQLModel, table=True):
    """Which worker publishes the outbox (`agents.integrations.outbox`): one row per
    lease `name` (`outbox`), its `holder` (a worker's id, None when released) and
    `expires_at`, seconds since the epoch on the database's own clock (so the workers'
    clocks never need to agree). The holder renews it; another worker takes it only
    once it has expired."""

    __tablename__ = "outbox_lease"

    name: str = Field(primary_key=True, max_length=32)
    holder: str | None = Field(default=None, max_length=200)
    expires_at: float = 0.0


__all__ = [
    "WEBHOOKS_PER_OWNER",
    "DeliveryStatus",
    "OutboxLease",
    "OutboxMessage",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "new_message_id",
    "new_secret",
]
