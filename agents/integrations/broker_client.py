"""One connection to the message broker through FastStream's one API (`NatsBroker`,
`RabbitBroker`, `KafkaBroker`, picked by `BrokerConfig.kind`): what it declares, how a
message is published and acknowledged, and how requests are received. What is sent
and where is `agents.integrations.broker`'s.

- `publish(outgoing)` returns once the broker took the message: NATS JetStream's
  PubAck (header `Nats-Msg-Id` = the message id: the stream drops a repeat within its
  duplicate window), RabbitMQ's publisher confirm (persistent, `message_id`), Kafka's
  acks from all in-sync replicas (key = the task id). It raises `BrokerError` when no
  ack comes within `publish_timeout` or the connection is down.
- `subscribe(handler)` (before `start`): requests from `requests_subject`, handed over
  as `Incoming` with manual ack: a JetStream durable pull consumer (`DURABLE`) on the
  requests stream; a durable RabbitMQ queue of that name bound to the exchange with it
  as the routing key; a Kafka consumer group (`DURABLE`), offsets committed on ack.
- `start()` connects and declares: NATS streams (`stream_name(events subject)` over
  `<events subject>.>`; with requests, `stream_name(requests subject)` over requests,
  results and dead letters), RabbitMQ's durable topic exchange. Subjects that overlap
  (`overlapping_subjects`) or a stream JetStream refuses raise `BrokerError`.
- JetStream publishes only to the events, results and dead-letter subjects; any other
  subject (a requester's reply subject) is a plain NATS message. An `Outgoing` marked
  `direct` goes to a requester's own address: plain NATS, or RabbitMQ's default
  exchange (the routing key is its queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from faststream import AckPolicy, Context
from faststream.message import StreamMessage

from agents.integrations.broker import (
    CONTENT_TYPE,
    BrokerConfig,
    Outgoing,
    overlapping_subjects,
    stream_name,
)

logger = logging.getLogger(__name__)

#: The durable consumer (NATS), queue (RabbitMQ: the requests subject) and group
#: (Kafka) of the workers that take requests: every worker shares it, each request
#: goes to one of them.
DURABLE = "postassist-requests"
#: JetStream's window for dropping a repeated `Nats-Msg-Id`, in seconds (its default).
DUPLICATE_WINDOW = 120.0


class BrokerError(RuntimeError):
    """The broker did not take a message (no connection, no ack in time, refused)."""


@dataclass
class Incoming:
    """A received message: its `body` bytes, `headers` (names in lower case), the
    broker's own reply address (`reply_to`, '' when none: RabbitMQ's `reply_to`
    property, a queue name; on NATS FastStream's `reply_to` header, a subject) and
    `deliveries`, how many times the broker has handed it over (1 the first time; see
    `delivery_count`). `ack()` / `nack()` settle it (a nacked one comes again)."""

    body: bytes
    headers: dict[str, str]
    reply_to: str
    message: StreamMessage[Any]
    deliveries: int = 1

    async def ack(self) -> None:
        await self.message.ack()

    async def nack(self) -> None:
        await self.message.nack()


class DeliveryCounter:
    """How many times a message has been delivered: NATS JetStream's `num_delivered`
    (the message's metadata); RabbitMQ's `x-delivery-count` header (quorum queues) plus
    one, else, for a message flagged `redelivered`, an in-process count keyed by its
    `message_id` (or the SHA-256 of its body); Kafka an in-process count keyed by topic,
    partition and offset. In-process counts keep the newest `KEEP` keys and start again
    in a new process (so a redelivery loop there is bounded per process)."""

    KEEP = 10_000

    def __init__(self) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()

    def count(self, message: StreamMessage[Any]) -> int:
        raw = message.raw_message
        with contextlib.suppress(Exception):  # NATS JetStream; others have no metadata
            if delivered := raw.metadata.num_delivered:
                return int(delivered)
        if hasattr(raw, "redelivered"):  # aio-pika
            header = (raw.headers or {}).get("x-delivery-count")
            if header is not None:
                return int(header) + 1
            if not raw.redelivered:
                key = raw.message_id or hashlib.sha256(message.body).hexdigest()
                self._counts.pop(key, None)
                return self._bump(key)
            return self._bump(raw.message_id or hashlib.sha256(message.body).hexdigest())
        topic = getattr(raw, "topic", None)
        return self._bump(f"{topic}:{getattr(raw, 'partition', '')}:{getattr(raw, 'offset', '')}")

    def _bump(self, key: str) -> int:
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self.KEEP:
            self._counts.popitem(last=False)
        return count


Handler = Callable[[Incoming], Awaitable[None]]


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether the NATS subject `subject` falls under `pattern` (`*` matches one token,
    a final `>` one or more)."""
    want, have = pattern.split("."), subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(have) == len(want)


def _make(config: BrokerConfig) -> Any:
    quiet = logging.getLogger("agents.integrations.faststream")
    if config.kind == "nats":
        from faststream.nats import NatsBroker

        return NatsBroker(
            config.url, max_reconnect_attempts=-1, reconnect_time_wait=1,
            connect_timeout=2, logger=quiet, log_level=logging.DEBUG,
        )  # fmt: skip
    if config.kind == "rabbit":
        from faststream.rabbit import RabbitBroker

        return RabbitBroker(
            config.url, reconnect_interval=1.0, timeout=config.publish_timeout,
            logger=quiet, log_level=logging.DEBUG,
        )  # fmt: skip
    from faststream.kafka import KafkaBroker

    servers = urlsplit(config.url).netloc.rpartition("@")[2]
    return KafkaBroker(
        servers, acks="all", enable_idempotence=True, logger=quiet, log_level=logging.DEBUG
    )


class BrokerClient:
    """A connection to `config`'s broker (see the module); `requests`: also declare
    what taking requests needs (the requests stream)."""

    def __init__(self, config: BrokerConfig, *, requests: bool = False) -> None:
        self.config = config
        self.requests = requests or config.consume
        self.raw = _make(config)
        self._exchange: Any = None
        self._streams: dict[str, str] = {}

    def subscribe(self, handler: Handler) -> None:
        """Hand every request to `handler` (call before `start`); `handler` settles and
        answers it (FastStream's own automatic reply to `reply_to` is off)."""
        config, counter = self.config, DeliveryCounter()

        async def on_message(
            message: Annotated[StreamMessage[Any], Context("message")],
        ) -> None:
            headers = {str(k).lower(): str(v) for k, v in (message.headers or {}).items()}
            if message.content_type:  # an AMQP property, not a header
                headers.setdefault("content-type", message.content_type)
            deliveries = counter.count(message)
            reply_to = message.reply_to or ""
            await handler(Incoming(message.body, headers, reply_to, message, deliveries))

        if config.kind == "nats":
            from faststream.nats import JStream, PullSub

            stream = JStream(stream_name(config.requests_subject), declare=False)
            self.raw.subscriber(
                config.requests_subject, stream=stream, durable=DURABLE,
                pull_sub=PullSub(batch_size=8, timeout=1.0), ack_policy=AckPolicy.MANUAL,
                no_reply=True,
            )(on_message)  # fmt: skip
        elif config.kind == "rabbit":
            from faststream.rabbit import RabbitQueue

            queue = RabbitQueue(
                config.requests_subject, durable=True, routing_key=config.requests_subject
            )
            self.raw.subscriber(
                queue, self._rabbit_exchange(), ack_policy=AckPolicy.MANUAL, no_reply=True
            )(on_message)
        else:
            self.raw.subscriber(
                config.requests_subject, group_id=DURABLE, auto_offset_reset="earliest",
                ack_policy=AckPolicy.MANUAL, no_reply=True,
            )(on_message)  # fmt: skip

    def _rabbit_exchange(self) -> Any:
        from faststream.rabbit import ExchangeType, RabbitExchange

        if self._exchange is None:
            self._exchange = RabbitExchange(
                self.config.exchange, type=ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def start(self) -> None:
        """Connect, declare (see the module) and start the subscriber, if any. Raises
        what the client raises when the broker cannot be reached."""
        await self.raw.connect()
        if self.config.kind == "nats":
            await self._declare_streams()
        elif self.config.kind == "rabbit":
            await self.raw.declare_exchange(self._rabbit_exchange())
        await self.raw.start()

    async def _declare_streams(self) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import BadRequestError, NotFoundError

        config = self.config
        if self.requests and (overlap := overlapping_subjects(config)):
            raise BrokerError(overlap)
        wanted = {stream_name(config.events_subject): [f"{config.events_subject}.>"]}
        if self.requests:
            subjects = [config.requests_subject, config.results_subject]
            wanted[stream_name(config.requests_subject)] = [*subjects, config.dead_letter_subject]
        published = {f"{config.events_subject}.>", config.results_subject,
                     config.dead_letter_subject}  # fmt: skip
        js = self.raw.connection.jetstream()
        for name, subjects in wanted.items():
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                try:
                    await js.add_stream(
                        StreamConfig(
                            name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW
                        )
                    )
                except BadRequestError as exc:
                    try:  # another worker created it meanwhile
                        await js.stream_info(name)
                    except NotFoundError:
                        raise BrokerError(
                            f"JetStream refused the stream {name} over {subjects}: {exc} "
                            "(do its subjects overlap another stream's?)"
                        ) from exc
                    logger.debug("stream %s: %s", name, exc)
            else:
                have = list(info.config.subjects or [])
                if missing := [s for s in subjects if s not in have]:
                    info.config.subjects = have + missing
                    await js.update_stream(info.config)
            for subject in subjects:
                if subject in published:  # replies go plain unless to the results subject
                    self._streams[subject] = name

    def _stream_of(self, subject: str) -> str | None:
        """The declared stream whose subjects match `subject` (NATS wildcards: `*` one
        token, `>` the rest), or None."""
        for pattern, name in self._streams.items():
            if subject_matches(pattern, subject):
                return name
        return None

    async def close(self) -> None:
        """Stop the subscriber and close the connection (never raises)."""
        try:
            await self.raw.stop()
        except Exception:
            logger.debug("broker close failed", exc_info=True)

    async def publish(self, outgoing: Outgoing) -> None:
        """Send `outgoing` and wait for the broker's ack (see the module); raises
        `BrokerError`."""
        try:
            async with asyncio.timeout(self.config.publish_timeout):
                await self._publish(outgoing)
        except BrokerError:
            raise
        except TimeoutError:
            raise BrokerError(f"no ack within {self.config.publish_timeout:g} s") from None
        except Exception as exc:
            raise BrokerError(f"{type(exc).__name__}: {exc}"[:500]) from exc

    async def _publish(self, out: Outgoing) -> None:
        kind, timeout = self.config.kind, self.config.publish_timeout
        if kind == "nats":
            headers = {"content-type": CONTENT_TYPE, "Nats-Msg-Id": out.message_id}
            stream = None if out.direct else self._stream_of(out.subject)
            if stream is None:  # a requester's own reply subject: plain NATS
                await self.raw.publish(out.body, out.subject, headers=headers)
                return
            ack = await self.raw.publish(
                out.body, out.subject, headers=headers, stream=stream, timeout=timeout
            )
            if ack is None or getattr(ack, "stream", None) != stream:
                raise BrokerError(f"JetStream did not store {out.message_id}: {ack!r}")
        elif kind == "rabbit":
            exchange = "" if out.direct else self._rabbit_exchange()
            await self.raw.publish(
                out.body, exchange=exchange, routing_key=out.subject, persist=True,
                message_id=out.message_id, content_type=CONTENT_TYPE, timeout=timeout,
            )  # fmt: skip
        else:
            await self.raw.publish(
                out.body, out.subject, key=out.key.encode() if out.key else None,
                headers={"content-type": CONTENT_TYPE, "ce_id": out.message_id},
            )  # fmt: skip


__all__ = [
    "DURABLE",
    "BrokerClient",
    "BrokerError",
    "DeliveryCounter",
    "Handler",
    "Incoming",
    "subject_matches",
]
