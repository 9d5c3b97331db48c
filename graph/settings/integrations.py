"""The settings of what PostAssist tells and takes from other systems
(`IntegrationSettings`): webhook deliveries (retries, the address guard) and the
message broker (where lifecycle events go, where requests come from, who may send
them); and the configs `agents.integrations` takes from them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from agents.integrations.broker import BrokerConfig
from agents.integrations.webhooks import WebhookConfig
from graph.settings.fields import comma_separated, count

#: Broker URL schemes FastStream serves (NATS, RabbitMQ, Kafka).
BROKER_SCHEMES = ("nats", "amqp", "amqps", "kafka")


class IntegrationSettings(BaseModel):
    """Webhooks and the message broker (environment variables of the same name in upper
    case; lists are comma-separated or JSON)."""

    webhook_max_attempts: int = count(
        12,
        100,
        "tries of one webhook delivery before it FAILED; with the default back-off (5 s "
        "times 3 per try, at most 6 h apart) 12 tries span about 22.6 h (never past 24 h)",
    )
    webhook_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="wait before a delivery's second try; each later wait is 3 times the "
        "one before (at most 6 h), each with +-20% jitter",
    )
    webhook_allow_private: bool = Field(
        False,
        description="true: webhooks may go to loopback, private and link-local addresses "
        "(development, tests, a receiver inside your network); false: public only",
    )
    webhook_concurrency: int = count(
        8, 1000, "webhook deliveries one worker sends at once (their own DBOS queue)"
    )
    broker_url: str | None = Field(
        None,
        description="message broker for lifecycle events and requests: nats://host:4222, "
        "amqp://user:pass@host:5672/, kafka://host:9092; unset: none",
    )
    broker_events_subject: str = Field(
        "postassist.events",
        min_length=1,
        max_length=200,
        description="subject/topic prefix of lifecycle events: task.completed goes to "
        "<prefix>.task.completed (NATS, Kafka topic; RabbitMQ: routing key on the "
        "topic exchange BROKER_EXCHANGE)",
    )
    broker_exchange: str = Field(
        "postassist", min_length=1, max_length=200, description="RabbitMQ topic exchange"
    )
    broker_consume: bool = Field(
        False, description="true: workers take generation requests from the broker"
    )
    broker_requests_subject: str = Field(
        "postassist.requests", min_length=1, max_length=200, description="where requests come"
    )
    broker_results_subject: str = Field(
        "postassist.results",
        min_length=1,
        max_length=200,
        description="where replies go when a request names no `replyto`",
    )
    broker_dead_letter_subject: str = Field(
        "postassist.requests.dead",
        min_length=1,
        max_length=200,
        description="where requests that cannot be read go, with the reason",
    )
    broker_principals: Annotated[list[str], NoDecode] = Field(
        [],
        description="principal ids a broker request may name as its owner (comma-"
        "separated); a request naming another is refused",
    )
    broker_publish_interval_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="most seconds a committed lifecycle event waits in the outbox when "
        "no wake-up reaches the publisher (and between tries while the broker is down)",
    )

    @field_validator("broker_principals", mode="before")
    @classmethod
    def _principal_list(cls, value: Any) -> Any:
        """Accept `a,b,c` (and a JSON list) from the environment."""
        return comma_separated(value)

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        """One of `BROKER_SCHEMES`; an empty value is none."""
        if not value or not value.strip():
            return None
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in BROKER_SCHEMES)}"
            )
        return value.strip()

    def webhook_config(self) -> WebhookConfig:
        """How webhook deliveries run (`agents.integrations.webhooks`)."""
        return WebhookConfig(
            max_attempts=self.webhook_max_attempts,
            retry_base=self.webhook_retry_base_seconds,
            allow_private=self.webhook_allow_private,
            concurrency=self.webhook_concurrency,
        )

    def broker_config(self) -> BrokerConfig | None:
        """Where broker messages go and how requests are taken
        (`agents.integrations.broker`); None without `BROKER_URL`. The queue cap and the
        idempotency TTL are the API's (`MAX_QUEUED_PER_PRINCIPAL`,
        `IDEMPOTENCY_TTL_HOURS`: other groups of `Settings`), and a request's
        `callbackUrl` passes the webhooks' address guard (`WEBHOOK_ALLOW_PRIVATE`)."""
        if not self.broker_url:
            return None
        return BrokerConfig(
            url=self.broker_url,
            events_subject=self.broker_events_subject,
            exchange=self.broker_exchange,
            consume=self.broker_consume,
            requests_subject=self.broker_requests_subject,
            results_subject=self.broker_results_subject,
            dead_letter_subject=self.broker_dead_letter_subject,
            principals=frozenset(self.broker_principals),
            publish_interval=self.broker_publish_interval_seconds,
            max_queued_per_principal=getattr(self, "max_queued_per_principal", None),
            idempotency_ttl_hours=getattr(self, "idempotency_ttl_hours", 24.0),
            allow_private=self.webhook_allow_private,
        )
