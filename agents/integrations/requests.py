"""Generation requests taken from the broker (`BROKER_CONSUME=true`, `postassist worker
--consume`): a CloudEvent on `requests_subject` whose `data` is a `GeneratePostInput`
(camelCase JSON, as the GraphQL API takes it) starts a generation owned by the
principal its `principal` extension names, which must be in `principals`.

- The reply is a CloudEvent to the request's `replyto` extension, else to the
  broker's own reply address (RabbitMQ's `reply_to` property: a queue, through the
  default exchange; NATS: FastStream's `reply_to` header), else to `results_subject`:
  `dev.postassist.request.accepted` with `{"taskId", "status"}`, or
  `dev.postassist.request.rejected` with `{"errors": [{"field", "message", "code"}]}`
  (fields in camelCase; codes FORBIDDEN for a principal not allowed, BAD_USER_INPUT,
  CONFLICT, RATE_LIMITED). A reply address that is PostAssist's own events, requests
  or dead-letter subject, or below one (`broker.refused_reply`), starts nothing: the
  rejection (field `replyto`) goes to `results_subject`. Replies go out as plain
  messages (NATS core, not JetStream) unless to `results_subject`. Its extension
  `causationid` is the request's id; its own id is derived from the request's
  (`reply_id`), so a repeated reply has the same id.
- Idempotency: the request's CloudEvent `id` is the principal's idempotency key
  (`agents.runtime.idempotency`, the operation `broker.generatePost`), so a redelivered
  request starts no second task and gets the same accepted reply.
- Acknowledgement: after the task row committed and the reply was acknowledged. A
  failure on the way (the database, the reply) nacks the message after
  `publish_interval` seconds, so it comes again, and is answered from its key. On its
  `MAX_DELIVERIES`th delivery (`Incoming.deliveries`) a message that still fails goes
  to the dead-letter subject with the last error instead and is acknowledged, so a
  failure that repeats never holds the consumer (on Kafka a nack holds the partition);
  past twice that (the dead-letter subject refuses too) it is logged and dropped.
- A message that cannot be read (not JSON, nested too deeply, attributes missing, no
  `data` or `data` not a JSON object: any error while reading it) goes to
  `dead_letter_subject` wrapped in a CloudEvent of type `DEAD_LETTER_TYPE` with the
  reason, and is acknowledged: the consumer never stops.

Text fields are validated by `db.models.PostRequest` (stripped, the length limits); the
GraphQL layer's extra normalisation (`graph.api.inputs.clean_text`) lives above
`agents` and is not applied here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from agents.integrations.addresses import resolve
from agents.integrations.broker import (
    ACCEPTED_TYPE,
    REJECTED_TYPE,
    BrokerConfig,
    Outgoing,
    encode,
    refused_reply,
    reply_id,
    structured,
)
from agents.integrations.broker_client import BrokerClient, Incoming
from agents.integrations.request_data import FieldError, Unreadable, post_request, read_event
from agents.runtime.idempotency import (
    Claim,
    IdempotencyConflictError,
    IdempotencyKeyError,
    Replayed,
    check_key,
    fingerprint,
)
from agents.runtime.tasks import TaskService
from agents.telemetry.metrics import BROKER_MESSAGES
from db.models import PostRequest, Task

logger = logging.getLogger(__name__)

#: The type of a dead letter's wrapper CloudEvent.
DEAD_LETTER_TYPE = "dev.postassist.request.deadletter"
#: The operation a request's key is fingerprinted under (apart from GraphQL's).
OPERATION = "broker.generatePost"
#: Deliveries of a message that keeps failing before it goes to the dead letters.
MAX_DELIVERIES = 5
#: Bytes of an unreadable message kept in its dead letter.
DEAD_BODY_MAX = 64 * 1024


class RequestConsumer:
    """Answers the requests `client` hands over (see the module), creating tasks with
    `tasks`."""

    def __init__(self, config: BrokerConfig, tasks: TaskService, client: BrokerClient) -> None:
        self.config, self.tasks, self.client = config, tasks, client

    async def handle(self, incoming: Incoming) -> None:
        """Answer one message and settle it; never raises (but `CancelledError`)."""
        try:
            await self.client.publish(await self.reply(incoming))
            await incoming.ack()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if incoming.deliveries >= MAX_DELIVERIES and await self._give_up(incoming, error):
                return
            BROKER_MESSAGES.labels("in", "nacked").inc()
            logger.warning("broker request not answered (%s); it comes again", error)
            await asyncio.sleep(self.config.publish_interval)
            with contextlib.suppress(Exception):
                await incoming.nack()

    async def _give_up(self, incoming: Incoming, error: str) -> bool:
        """Dead-letter (or, past `2 * MAX_DELIVERIES`, drop) a message that keeps
        failing and ack it; False when that failed too (it is nacked)."""
        why = f"not answered after {incoming.deliveries} deliveries: {error}"
        try:
            try:
                await self.client.publish(self.dead_letter(incoming, why))
            except Exception:
                if incoming.deliveries < 2 * MAX_DELIVERIES:
                    raise
                logger.exception("broker request dropped (%s): no dead letter either", why)
            else:
                BROKER_MESSAGES.labels("in", "dead_letter").inc()
                logger.error("broker request dead-lettered: %s", why)
            await incoming.ack()
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def reply(self, incoming: Incoming) -> Outgoing:
        """The message that answers `incoming`: its dead letter when it cannot be read
        (any error while reading it), else `answer`'s reply."""
        try:
            attributes, data = read_event(incoming.body, incoming.headers)
        except Exception as exc:
            why = str(exc) if isinstance(exc, Unreadable) else f"unreadable: {type(exc).__name__}"
            BROKER_MESSAGES.labels("in", "dead_letter").inc()
            return self.dead_letter(incoming, why)
        return await self.answer(attributes, data, incoming.reply_to)

    async def answer(
        self, attributes: dict[str, Any], data: dict[str, Any], reply_to: str = ""
    ) -> Outgoing:
        """The reply to a readable request (starting its task when it is accepted), to
        its `replyto`, else the broker's `reply_to`, else the results subject; a refused
        address (`refused_reply`) starts nothing and is answered on the results subject."""
        principal = str(attributes.get("principal") or "")
        request_id = str(attributes["id"])
        results = self.config.results_subject
        target, direct = str(attributes.get("replyto") or ""), False
        if not target:
            target, direct = (reply_to, True) if reply_to else (results, False)
        refusal = refused_reply(self.config, target) if target != results else None
        if refusal:
            target, direct = results, False
            outcome: Task | list[FieldError] = [FieldError("replyto", refusal)]
        else:
            outcome = await self._outcome(principal, request_id, data)
        BROKER_MESSAGES.labels("in", "accepted" if isinstance(outcome, Task) else "rejected").inc()
        if isinstance(outcome, Task):
            kind, body = ACCEPTED_TYPE, {"taskId": outcome.id, "status": str(outcome.status)}
        else:
            kind, body = REJECTED_TYPE, {"errors": [asdict(error) for error in outcome]}
        reply = {
            "id": reply_id(principal, request_id, kind),
            "source": self.config.source,
            "type": kind,
            "causationid": request_id,
        }
        if isinstance(outcome, Task):
            reply["subject"] = outcome.id
        if principal:
            reply["principal"] = principal
        return Outgoing(target, encode(structured(reply, body)), reply["id"], direct=direct)

    async def _outcome(
        self, principal: str, request_id: str, data: dict[str, Any]
    ) -> Task | list[FieldError]:
        if principal not in self.config.principals:
            why = "principal: name an allowed principal (BROKER_PRINCIPALS) in the extension"
            return [FieldError("principal", why, "FORBIDDEN")]
        try:
            check_key(request_id)
        except IdempotencyKeyError as exc:
            return [FieldError("id", str(exc).replace("idempotencyKey", "id"))]
        request = post_request(data)
        if isinstance(request, list):
            return request
        claim = Claim(
            owner=principal,
            key=request_id,
            fingerprint=fingerprint(OPERATION, [request]),
            ttl=timedelta(hours=self.config.idempotency_ttl_hours),
        )
        try:
            if replayed := await claim.replay(self.tasks.session_factory):
                return replayed[0]
            if refused := await self._refusal(principal, request):
                return refused
            return await self.tasks.create_generation(request, owner=principal, claim=claim)
        except Replayed as won:
            return won.tasks[0]
        except IdempotencyConflictError as exc:
            return [FieldError("id", str(exc).replace("idempotencyKey", "id"), "CONFLICT")]

    async def _refusal(self, principal: str, request: PostRequest) -> list[FieldError]:
        if request.callback_url:
            try:
                await resolve(request.callback_url, allow_private=self.config.allow_private)
            except ValueError as exc:
                return [FieldError("callbackUrl", f"callbackUrl: {exc}")]
        cap = self.config.max_queued_per_principal
        if cap is not None and await self.tasks.queued_count(principal) >= cap:
            why = f"{principal} has {cap} tasks waiting (MAX_QUEUED_PER_PRINCIPAL); send later"
            return [FieldError("input", why, "RATE_LIMITED")]
        return []

    def dead_letter(self, incoming: Incoming, reason: str) -> Outgoing:
        """The dead letter of an unreadable message: a CloudEvent whose `data` holds the
        `reason`, the message's `headers` and its body (`body` as text, or `bodyBase64`;
        at most `DEAD_BODY_MAX` bytes); its id is the SHA-256 of the body, so a repeat
        of one message is one dead letter to JetStream."""
        raw = incoming.body[:DEAD_BODY_MAX]
        data: dict[str, Any] = {"reason": reason, "headers": incoming.headers}
        try:
            data["body"] = raw.decode()
        except UnicodeDecodeError:
            data["bodyBase64"] = base64.b64encode(raw).decode()
        digest = hashlib.sha256(incoming.body).hexdigest()[:32]
        attributes = {"id": f"dead:{digest}", "source": self.config.source}
        event = structured({**attributes, "type": DEAD_LETTER_TYPE}, data)
        return Outgoing(self.config.dead_letter_subject, encode(event), attributes["id"])


@dataclass
class ConsumerPlugin:
    """The worker plugin (`agents.runtime.worker.WorkerPlugin`) that takes requests
    for the worker's lifetime: connects (again every `publish_interval` seconds while
    the broker cannot be reached at start) and subscribes; the client reconnects by
    itself after that."""

    config: BrokerConfig
    tasks: TaskService

    def prepare(self) -> None:
        """Nothing runs before DBOS launches."""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        clients: list[BrokerClient] = []

        async def connect() -> None:
            while True:
                client = BrokerClient(self.config, requests=True)
                client.subscribe(RequestConsumer(self.config, self.tasks, client).handle)
                try:
                    await client.start()
                except Exception as exc:
                    await client.close()
                    logger.warning("broker requests: cannot connect (%s); trying again", exc)
                    await asyncio.sleep(self.config.publish_interval)
                    continue
                clients.append(client)
                return

        starting = asyncio.create_task(connect(), name="broker-requests")
        try:
            yield
        finally:
            starting.cancel()
            await asyncio.wait([starting])
            for client in clients:
                await client.close()


__all__ = [
    "DEAD_LETTER_TYPE",
    "MAX_DELIVERIES",
    "ConsumerPlugin",
    "FieldError",
    "RequestConsumer",
    "Unreadable",
    "post_request",
    "read_event",
]
