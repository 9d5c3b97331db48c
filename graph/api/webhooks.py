"""Webhooks in the schema: `registerWebhook`, `deleteWebhook`, `redeliverWebhook`, the
`webhooks` and `webhookDeliveries` queries, and the check of a submission's
`callbackUrl` (`check_callbacks`). Every operation is the calling principal's own: a
webhook or delivery of another principal reads as NOT_FOUND, an admin's included (a
webhook carries its owner's secret). `agents.integrations.webhooks` does the work."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

import strawberry

from agents.integrations.lifecycle import DEFAULT_EVENTS, LifecycleEvent
from agents.integrations.webhooks import (
    MAX_DELIVERIES,
    DeliveryInProgressError,
    WebhookInputError,
    WebhookNotFoundError,
)
from db.messages import Webhook as WebhookRow
from db.messages import WebhookAttempt as AttemptRow
from db.messages import WebhookDelivery as DeliveryRow
from db.models import PostRequest
from graph.api.context import Info
from graph.errors import ConflictError, NotFoundError, UserInputError
from graph.security.rate_limits import RateLimited

WebhookEvent = strawberry.enum(
    enum.Enum("WebhookEvent", {event.name: event.name for event in LifecycleEvent}),
    description="A task's lifecycle event a webhook may subscribe to (the body's `type` "
    "is its dotted name: TASK_COMPLETED is task.completed, AWAITING_REVIEW "
    "task.awaiting_review). TASK_QUEUED: created, or queued again by retryTask.",
)
_DEFAULTS = ", ".join(event.name for event in DEFAULT_EVENTS)


@strawberry.enum(
    description="PENDING: being tried or waiting for a retry; SUCCEEDED: a "
    "2xx answer; FAILED: out of attempts or time, or its webhook was deleted"
)
class DeliveryStatus(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.type(description="A principal's subscription to its tasks' lifecycle events.")
class Webhook:
    id: strawberry.ID
    url: str
    events: list[WebhookEvent]  # type: ignore[valid-type]
    description: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: WebhookRow) -> Webhook:
        """The webhook `row`, without its secret."""
        return cls(
            id=strawberry.ID(row.id),
            url=row.url,
            events=[WebhookEvent[LifecycleEvent(name).name] for name in row.events],
            description=row.description,
            created_at=row.created_at,
        )


@strawberry.type(description="registerWebhook's answer: the webhook and its secret.")
class RegisterWebhookPayload:
    webhook: Webhook
    secret: str = strawberry.field(
        description="whsec_...: verifies the webhook-signature header; shown only here"
    )


@strawberry.type(description="One HTTP attempt of a delivery.")
class WebhookAttempt:
    attempt: int = strawberry.field(description="1, 2, 3 ... per delivery")
    started_at: datetime
    status_code: int | None = strawberry.field(description="the answer's; null: no answer")
    latency_ms: float = strawberry.field(description="from the request to the answer's end")
    error: str | None = strawberry.field(description="null for a 2xx answer")

    @classmethod
    def from_model(cls, row: AttemptRow) -> WebhookAttempt:
        """The attempt `row`."""
        return cls(
            attempt=row.attempt,
            started_at=row.started_at,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            error=row.error,
        )


@strawberry.type(description="One lifecycle event of one task sent to one URL.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="the webhook-id header of every attempt")
    webhook_id: strawberry.ID | None = strawberry.field(
        description="null for the task's own callbackUrl"
    )
    task_id: strawberry.ID
    seq: int = strawberry.field(description="the event's seq in the task's log")
    event: WebhookEvent  # type: ignore[valid-type]
    url: str
    status: DeliveryStatus
    attempt_count: int = strawberry.field(description="attempts made so far")
    next_attempt_at: datetime | None = strawberry.field(description="null once it ended")
    created_at: datetime
    attempts: list[WebhookAttempt] = strawberry.field(description="first attempt first")

    @classmethod
    def from_model(cls, row: DeliveryRow, attempts: Sequence[AttemptRow]) -> WebhookDelivery:
        """The delivery `row` with its `attempts`."""
        return cls(
            id=strawberry.ID(row.id),
            webhook_id=strawberry.ID(row.webhook_id) if row.webhook_id else None,
            task_id=strawberry.ID(row.task_id),
            seq=row.seq,
            event=WebhookEvent[LifecycleEvent(row.event_type).name],
            url=row.url,
            status=DeliveryStatus(row.status),
            attempt_count=row.attempts,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            attempts=[WebhookAttempt.from_model(a) for a in attempts],
        )


def _input_error(exc: WebhookInputError) -> UserInputError:
    return UserInputError(str(exc), field=exc.field)


async def check_callbacks(info: Info, requests: Sequence[PostRequest], *, prefix: str = "") -> None:
    """BAD_USER_INPUT unless every request's `callback_url` may be called (public, or
    `WEBHOOK_ALLOW_PRIVATE`); `extensions.field` is `callbackUrl`, or with a batch's
    `prefix` `inputs[2].callbackUrl`."""
    webhooks = info.context.services.webhooks
    for index, request in enumerate(requests):
        if request.callback_url:
            field = f"{prefix}[{index}].callbackUrl" if prefix else "callbackUrl"
            try:
                await webhooks.check_url(request.callback_url, field=field)
            except WebhookInputError as exc:
                raise _input_error(exc) from None


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="The caller's webhooks, oldest first.")
    async def webhooks(self, info: Info) -> list[Webhook]:
        rows = await info.context.services.webhooks.list(info.context.principal.id)
        return [Webhook.from_model(row) for row in rows]

    @strawberry.field(
        description=f"The caller's deliveries, newest first (at most {MAX_DELIVERIES}), with "
        "every attempt: of one webhook (webhookId), of one task (taskId), or all."
    )
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: strawberry.ID | None = None,
        task_id: strawberry.ID | None = None,
        first: int = 20,
    ) -> list[WebhookDelivery]:
        if not 1 <= first <= MAX_DELIVERIES:
            raise UserInputError(f"first: 1 to {MAX_DELIVERIES}", field="first")
        service = info.context.services.webhooks
        try:
            rows = await service.deliveries(
                info.context.principal.id,
                webhook_id=str(webhook_id) if webhook_id else None,
                task_id=str(task_id) if task_id else None,
                limit=first,
            )
        except WebhookNotFoundError:
            raise NotFoundError(f"no webhook with id {webhook_id}", field="webhookId") from None
        attempts = await service.attempts([row.id for row in rows])
        return [WebhookDelivery.from_model(row, attempts[row.id]) for row in rows]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Subscribe a URL to the caller's tasks' lifecycle events (default: "
        f"{_DEFAULTS}). Each delivery is a signed POST (Standard Webhooks: webhook-id, "
        "webhook-timestamp, webhook-signature), retried with back-off for up to 24 h. "
        "secret: whsec_ and base64 of 24-64 bytes; generated when omitted. The URL must "
        "be http(s) and public (unless the server allows private addresses).",
        extensions=[RateLimited()],
    )
    async def register_webhook(
        self,
        info: Info,
        url: str,
        events: list[WebhookEvent] | None = None,  # type: ignore[valid-type]
        secret: str | None = None,
        description: str | None = None,
    ) -> RegisterWebhookPayload:
        chosen = [LifecycleEvent[event.name] for event in events or []]
        if events is not None and not chosen:
            raise UserInputError("events: name at least one event (or omit it)", field="events")
        try:
            row = await info.context.services.webhooks.register(
                info.context.principal.id, url, chosen or None, secret, description
            )
        except WebhookInputError as exc:
            raise _input_error(exc) from None
        return RegisterWebhookPayload(webhook=Webhook.from_model(row), secret=row.secret)

    @strawberry.mutation(
        description="Delete one of the caller's webhooks; its deliveries still waiting for "
        "a retry end FAILED. Returns the deleted webhook.",
        extensions=[RateLimited()],
    )
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> Webhook:
        try:
            row = await info.context.services.webhooks.delete(info.context.principal.id, str(id))
        except WebhookNotFoundError:
            raise NotFoundError(f"no webhook with id {id}", field="id") from None
        return Webhook.from_model(row)

    @strawberry.mutation(
        description="Send a finished delivery once more (same webhook-id, next attempt "
        "number, one try). CONFLICT while it is still being tried.",
        extensions=[RateLimited()],
    )
    async def redeliver_webhook(self, info: Info, delivery_id: strawberry.ID) -> WebhookDelivery:
        service = info.context.services.webhooks
        try:
            row = await service.redeliver(info.context.principal.id, str(delivery_id))
        except WebhookNotFoundError:
            raise NotFoundError(f"no delivery with id {delivery_id}", field="deliveryId") from None
        except DeliveryInProgressError as exc:
            raise ConflictError(str(exc)) from None
        attempts = await service.attempts([row.id])
        return WebhookDelivery.from_model(row, attempts[row.id])


__all__ = ["WebhookMutation", "WebhookQuery", "check_callbacks"]
