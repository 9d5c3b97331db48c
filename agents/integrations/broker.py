"""The message broker: one FastStream broker chosen by the URL's scheme (`nats://`:
`NatsBroker`, `amqp://` / `amqps://`: `RabbitBroker`, `kafka://`: `KafkaBroker`), the
CloudEvents 1.0 messages PostAssist sends, and where they go.

Where messages go (`BrokerConfig`):

- Lifecycle events: subject `<events subject>.<event name>`
  (`postassist.events.task.completed`). NATS: published with JetStream into the stream
  `stream_name(events subject)` (subjects `<events subject>.>`), header `Nats-Msg-Id` =
  the CloudEvent id, so the server drops a repeat within its duplicate window; sent once
  the PubAck came. RabbitMQ: the durable topic exchange `exchange`, that subject as the
  routing key, `message_id` = the CloudEvent id, persistent, sent once the publisher
  confirm came. Kafka: ONE topic, the events subject itself (a topic per event name
  would lose a task's order across them), key = the task id (one partition per task,
  so its events keep their order), acks from all in-sync replicas.
- Replies and dead letters: the same broker; on NATS the results and dead-letter
  subjects go through JetStream (the requests stream holds them), any other reply
  subject (a requester's inbox) as a plain NATS message. A reply address under
  PostAssist's own subjects is refused (`refused_reply`): a requester cannot write into
  the events stream or the requests queue.

Every message is a structured CloudEvent (`CONTENT_TYPE`, the JSON format of the
`cloudevents` package): `specversion` 1.0, `id`, `source`, `type`, `subject`, `time`,
`datacontenttype` application/json, `data`.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from agents.integrations.lifecycle import lifecycle_event, payload
from db.models import AgentLog, Task

#: The content type of a structured CloudEvent in JSON (CloudEvents JSON format, 3.1).
CONTENT_TYPE = JSONFormat.CONTENT_TYPE
#: The CloudEvent `source` of PostAssist's messages unless configured.
DEFAULT_SOURCE = "/postassist"
#: The reply types of a request taken from the broker (`agents.integrations.requests`).
ACCEPTED_TYPE = "dev.postassist.request.accepted"
REJECTED_TYPE = "dev.postassist.request.rejected"

BrokerKind = Literal["nats", "rabbit", "kafka"]
_KINDS: dict[str, BrokerKind] = {
    "nats": "nats",
    "tls": "nats",
    "amqp": "rabbit",
    "amqps": "rabbit",
    "kafka": "kafka",
}


@dataclass(frozen=True)
class BrokerConfig:
    """Where PostAssist's broker messages go and how they are sent (the `BROKER_*`
    settings): `url` (its scheme picks the broker), `events_subject` (the prefix of
    lifecycle events), `exchange` (RabbitMQ's topic exchange), `consume` (take requests
    from `requests_subject`), `results_subject` (replies of requests without a
    `replyto`), `dead_letter_subject` (requests that cannot be read), `principals` (who
    a request may name as its owner), `publish_interval` (seconds between outbox polls
    when no wake-up comes, and between tries while the broker is down),
    `publish_timeout` (seconds one publish may wait for its ack), `source` (the
    CloudEvent `source`), `keep_sent_days` (sent outbox rows are deleted after this
    many days), `max_queued_per_principal` (a request is refused past this many
    PENDING tasks of its principal; None: no cap), `idempotency_ttl_hours` (how long a
    request id holds), `allow_private` (a request's `callbackUrl` may be private:
    `WEBHOOK_ALLOW_PRIVATE`)."""

    url: str
    events_subject: str = "postassist.events"
    exchange: str = "postassist"
    consume: bool = False
    requests_subject: str = "postassist.requests"
    results_subject: str = "postassist.results"
    dead_letter_subject: str = "postassist.requests.dead"
    principals: frozenset[str] = field(default_factory=frozenset)
    publish_interval: float = 0.5
    publish_timeout: float = 5.0
    source: str = DEFAULT_SOURCE
    keep_sent_days: float = 7.0
    max_queued_per_principal: int | None = None
    idempotency_ttl_hours: float = 24.0
    allow_private: bool = False

    @property
    def kind(self) -> BrokerKind:
        """The broker the URL names (`broker_kind`)."""
        return broker_kind(self.url)


def broker_kind(url: str) -> BrokerKind:
    """`nats`, `rabbit` or `kafka` for a `nats://` (`tls://`), `amqp://` (`amqps://`) or
    `kafka://` URL; `ValueError` for another scheme."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _KINDS:
        raise ValueError(f"no broker for {scheme or 'a URL without a'}:// (nats, amqp, kafka)")
    return _KINDS[scheme]


def under(subject: str, prefix: str) -> bool:
    """Whether `subject` is `prefix` or below it (`a.b` is under `a`; `ab` is not)."""
    return subject == prefix or subject.startswith(prefix + ".")


def refused_reply(config: BrokerConfig, subject: str) -> str | None:
    """Why a reply may not go to `subject` (a request's `replyto`, or the broker's own
    reply address), or None: it must be a plain subject (no white space, no `*`, `>`,
    `#` wildcards, at most 255 characters) that is neither the events, requests nor
    dead-letter subject nor below one of them (the results subject is fine)."""
    if not subject or len(subject) > 255 or re.search(r"[\s*>#]", subject):
        return "replyto: a subject without white space or wildcards (at most 255 characters)"
    for name, own in (("events", config.events_subject), ("requests", config.requests_subject),
                      ("dead-letter", config.dead_letter_subject)):  # fmt: skip
        if under(subject, own):
            return f"replyto: {subject} is PostAssist's own {name} subject; name your own"
    return None


def overlapping_subjects(config: BrokerConfig) -> str | None:
    """Why `config`'s subjects collide, or None: with requests taken, the requests,
    results and dead-letter subjects may not be the events subject or below it (on NATS
    the events stream holds `<events>.>`, so a second stream over them cannot be made;
    on RabbitMQ an events consumer bound to `<events>.#` would get requests too)."""
    if not config.consume:
        return None
    for name, subject in (("requests", config.requests_subject),
                          ("results", config.results_subject),
                          ("dead-letter", config.dead_letter_subject)):  # fmt: skip
        if under(subject, config.events_subject):
            return (
                f"the {name} subject {subject} is under the events subject "
                f"{config.events_subject}: give them separate prefixes"
            )
    return None


def event_subject(prefix: str, event_name: str) -> str:
    """Where the lifecycle event `event_name` (`task.completed`) goes: `<prefix>.<name>`."""
    return f"{prefix}.{event_name}"


def event_destination(config: BrokerConfig, event_name: str) -> str:
    """The subject (topic, routing key) of lifecycle event `event_name` under `config`:
    `event_subject(events subject, name)`; on Kafka the events topic itself (the task id
    as the key keeps a task's events in one partition, in order)."""
    if config.kind == "kafka":
        return config.events_subject
    return event_subject(config.events_subject, event_name)


def stream_name(subject: str) -> str:
    """The JetStream stream named after `subject` (`postassist.events` ->
    `POSTASSIST_EVENTS`: stream names may not hold `.`, `*`, `>` or white space)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subject).upper()


def structured(attributes: dict[str, Any], data: dict[str, Any] | None) -> dict[str, Any]:
    """The structured JSON form of a CloudEvent 1.0 (a dict, as `json.loads` of the
    `cloudevents` package's JSON format gives it) with `attributes` (`id`, `source`,
    `type` required; `time` a UTC datetime, now when missing; extensions lowercase
    alphanumeric) and `data`. Raises `cloudevents.core.exceptions.CloudEventValidationError`
    for attributes the spec refuses."""
    values = {"datacontenttype": "application/json", **attributes}
    values.setdefault("time", datetime.now(UTC))
    return json.loads(JSONFormat().write(CloudEvent(values, data)))


def lifecycle_cloudevent(
    task: Task, row: AgentLog, *, source: str = DEFAULT_SOURCE
) -> dict[str, Any] | None:
    """The CloudEvent of a lifecycle row (None for another row): `id` `<task id>:<seq>`,
    `type` `dev.postassist.task.completed` and so on, `subject` the task id, `time` when
    the row was written, `data` `lifecycle.payload` (camelCase)."""
    event = lifecycle_event(row)
    if event is None:
        return None
    attributes = {
        "id": f"{task.id}:{row.seq}",
        "source": source,
        "type": event.cloudevent_type,
        "subject": task.id,
        "time": row.created_at.astimezone(UTC),
    }
    return structured(attributes, payload(task, row))


def reply_id(principal: str, request_id: str, reply_type: str) -> str:
    """The id of the reply of type `reply_type` to request `request_id` of `principal`:
    a UUID (version 5) of the three, so a redelivered request's reply repeats its id
    and a requester drops the repeat."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"postassist:{principal}:{request_id}:{reply_type}"))


def encode(event: dict[str, Any]) -> bytes:
    """A structured CloudEvent as the bytes of a message (UTF-8 JSON, no spaces)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Outgoing:
    """One message to send: `body` (a structured CloudEvent's bytes), to `subject`, with
    `message_id` (the CloudEvent id: `Nats-Msg-Id`, AMQP `message_id`, a Kafka header)
    and `key` (Kafka's partition key: the task id; None elsewhere). `direct`: the
    subject is a requester's own address from the broker's reply field (RabbitMQ: a
    queue name, sent through the default exchange; NATS: a plain message)."""

    subject: str
    body: bytes
    message_id: str
    key: str | None = None
    direct: bool = False


__all__ = [
    "ACCEPTED_TYPE",
    "CONTENT_TYPE",
    "DEFAULT_SOURCE",
    "REJECTED_TYPE",
    "BrokerConfig",
    "BrokerKind",
    "Outgoing",
    "broker_kind",
    "encode",
    "event_destination",
    "event_subject",
    "lifecycle_cloudevent",
    "overlapping_subjects",
    "refused_reply",
    "reply_id",
    "stream_name",
    "structured",
    "under",
]
