"""The GraphQL router: Strawberry's FastAPI router with request bodies checked strictly
(HTTP 400 with a GraphQL-shaped body for anything that is not a GraphQL request), and a
legacy graphql-ws handler that closes connections that skip `connection_init` and
answers malformed messages instead of crashing.

A refused `connection_init` closes with a code that says why, on both protocols
(`CREDENTIALS_CLOSE`, `TOO_MANY_CONNECTIONS_CLOSE`); the README's "WebSocket close
codes" table lists every code the server uses.

No WebSocket message is parsed before its size is checked (`WS_INIT_MAX_SIZE` until
`connection_ack`, then `WS_MAX_SIZE`: close 1009), and every malformed one closes the
connection with 4400 or is answered with an `error` (`BAD_REQUEST`), never a traceback:
JSON nested past the parser's recursion limit, a `subscribe` whose fields have the
wrong types, a graphql-ws `start` of a query or mutation."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from json import JSONDecodeError
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET, UnsetType

from graph.api.context import Context
from graph.errors import (
    BAD_REQUEST,
    OPERATION_NAME_REQUIRED,
    TOO_MANY_CONNECTIONS,
    UnauthenticatedError,
    error_body,
    error_entry,
)
from graph.security.auth import authorization_from_params, connection_cap
from graph.transport.ide import offline_html

logger = logging.getLogger(__name__)

#: Close code for a connection that sent no `connection_init` in time (the one
#: graphql-transport-ws uses), and for a message that is not a protocol message.
INIT_TIMEOUT_CLOSE = 4408
INVALID_MESSAGE_CLOSE = 4400
#: Close code for a `connection_init` whose credentials prove no principal, and for a
#: connection whose credentials stopped working: 4403 "Forbidden", as
#: graphql-transport-ws closes refused credentials (the legacy graphql-ws protocol
#: defines no close codes; it closes the same way here).
CREDENTIALS_CLOSE = 4403
#: Close code for a `connection_init` of a principal that already holds its cap of open
#: WebSockets (`graph.security.auth.connection_cap`). RFC 6455 leaves 4000-4999 to applications.
#: The protocol libraries there (the graphql-ws library, reference implementation of
#: graphql-transport-ws, and strawberry) use 4000 + an HTTP status (4400, 4401, 4403,
#: 4406, 4408, 4409, 4429, 4500, 4504) and 4004/4005 (client side); HTTP statuses end at
#: 599, so no code from 4600 up can collide with one they add later. 4900-4999 is
#: PostAssist's own block, and 4929 recalls HTTP 429 Too Many Requests, whose mirror,
#: 4429, already means "Too many initialisation requests" in graphql-transport-ws.
TOO_MANY_CONNECTIONS_CLOSE = 4929
#: Close code for a message larger than the connection's limit: RFC 6455's 1009
#: "Message Too Big", the code uvicorn closes with past `ws_max_size`.
MESSAGE_TOO_BIG_CLOSE = 1009
#: The longest WebSocket close reason, in UTF-8 bytes (RFC 6455 5.5: a control frame
#: carries at most 125 bytes, 2 of them the code).
MAX_CLOSE_REASON_BYTES = 123
#: Where a refused `connection_init` leaves its close code and reason for
#: `RefusingWebSocketAdapter` (an attribute of the connection's `state`).
_REFUSAL_STATE = "postassist_refusal"
#: Set on the connection's `state` once a `connection_init` is acknowledged: from then
#: on its messages may be as large as `WS_MAX_SIZE`, before only `WS_INIT_MAX_SIZE`.
_ACKNOWLEDGED_STATE = "postassist_acknowledged"
#: What `RefusingWebSocketAdapter.iter_json` yields for text that is not JSON when the
#: handler asks to ignore parsing errors (graphql-ws): `LegacyWSHandler` closes on it.
NOT_JSON = object()
#: A JSON object, or absent/null.
_OBJECT = (dict, type(None))


def close_reason(text: str) -> str:
    """`text` cut to at most MAX_CLOSE_REASON_BYTES of UTF-8 (never inside a character)."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def _refuse(
    context: Context, error: dict[str, Any], code: int, reason: str
) -> ConnectionRejectionError:
    """The exception that refuses a `connection_init`: graphql-ws sends `error` in its
    `connection_error`; then both protocols close with `code` and `reason` (left on the
    connection's state for `RefusingWebSocketAdapter`)."""
    connection = context.request
    assert isinstance(connection, HTTPConnection)
    setattr(connection.state, _REFUSAL_STATE, (code, close_reason(reason)))
    return ConnectionRejectionError(error)


class RefusingWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's ASGI WebSocket adapter, except that

    - the close after a refused `connection_init` uses the code and reason the refusal
      chose (`_refuse`): strawberry closes every `ConnectionRejectionError` alike
      (graphql-transport-ws 4403 "Forbidden", graphql-ws 1011 "internal error"), so a
      client could not tell a bad key from a full connection cap;
    - a message is measured before it is parsed: past the router's `init_max_bytes`
      before `connection_ack` (no credentials yet) or its `max_message_bytes` after,
      the connection closes with 1009 (uvicorn refuses frames past `ws_max_size`
      itself; this holds under any server);
    - JSON nested past Python's recursion limit (`[[[[...`) is text that is not JSON,
      not an unhandled `RecursionError`; for graphql-ws, which asks to ignore such
      text, it yields `NOT_JSON`, so that it is closed too."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        """Each message, decoded (see the class); ends when the connection does."""
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if reason := self._too_big(text):
                    await self.close(MESSAGE_TOO_BIG_CLOSE, reason)
                    return
                try:
                    message = self.view.decode_json(text)
                except (JSONDecodeError, RecursionError) as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                    message = NOT_JSON
                yield message
        except KeyError as exc:
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    def _too_big(self, text: str) -> str | None:
        """The close reason when `text` is over this connection's limit, else None."""
        if getattr(self.ws.state, _ACKNOWLEDGED_STATE, False):
            limit, setting = self.view.max_message_bytes, "WS_MAX_SIZE"
        else:
            limit, setting = self.view.init_max_bytes, "WS_INIT_MAX_SIZE"
        if limit is None or len(text) <= limit // 4:  # 4 bytes a character at most
            return None
        size = len(text) if text.isascii() else len(text.encode(errors="surrogatepass"))
        if size <= limit:
            return None
        logger.info("WebSocket message of %d bytes refused: %s=%d", size, setting, limit)
        return f"message too big: {setting}={limit} bytes"

    async def close(self, code: int, reason: str) -> None:
        """Close with `code` and `reason`, or with those of a pending refusal."""
        refusal = getattr(self.ws.state, _REFUSAL_STATE, None)
        if refusal is not None:
            delattr(self.ws.state, _REFUSAL_STATE)
            code, reason = refusal
        await super().close(code, reason)


def _valid_start(message: dict[str, Any]) -> str | None:
    """Why a legacy `start` message is malformed, or None."""
    payload = message.get("payload")
    if not isinstance(message.get("id"), str):
        return "start needs a string id"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "start needs a payload with a query string"
    if not isinstance(payload.get("variables"), (dict, type(None))):
        return "variables must be an object"
    if not isinstance(payload.get("operationName"), (str, type(None))):
        return "operationName must be a string"
    return None


def _valid_subscribe(message: dict[str, Any]) -> str | None:
    """Why a graphql-transport-ws `subscribe` is malformed (the protocol's
    `SubscribeMessage`: a string id; a payload with a string `query`, and `variables`
    and `extensions` objects and a string `operationName` when present), or None."""
    payload = message.get("payload")
    if not isinstance(message.get("id"), str):
        return "subscribe needs a string id"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "subscribe needs a payload with a query string"
    for key, kind, name in (
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
        ("operationName", str, "a string"),
    ):
        if not isinstance(payload.get(key), (kind, type(None))):
            return f"{key} must be {name}"
    return None


def _subscription_problem(payload: dict[str, Any], max_tokens: int) -> tuple[str, str] | None:
    """Why a legacy `start` cannot run as a subscription, as (message, code), or None.

    graphql-ws starts subscriptions only (strawberry's handler raises for anything
    else): a query or a mutation is BAD_REQUEST, as is an `operationName` the document
    does not have; several operations and no `operationName` is OPERATION_NAME_REQUIRED,
    as over HTTP. A document that does not parse within `max_tokens` tokens
    (`MAX_QUERY_TOKENS`) is None: the schema answers it with its usual error."""
    try:
        document = parse(payload["query"], no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    name = payload.get("operationName")
    operation = get_operation_ast(document, name)
    if operation is None:
        if name is not None:
            return f"the document has no operation named {name[:100]!r}", BAD_REQUEST
        message = "the document must have one operation, or name one in operationName"
        return message, OPERATION_NAME_REQUIRED
    if operation.operation is not OperationType.SUBSCRIPTION:
        kind = operation.operation.value
        message = (
            f"a graphql-ws start runs a subscription, not a {kind}: send a {kind} over "
            "HTTP (POST /graphql) or graphql-transport-ws"
        )
        return message, BAD_REQUEST
    return None


class _CountedConnection:
    """Checks an authenticated WebSocket's credentials again every AUTH_CACHE_SECONDS
    (at least 1 s) and closes it with 4403 once they fail (a JWT past its `exp`, a
    revoked key), and gives back the connection its principal was counted for (at
    `connection_init`) when it ends, however it ends."""

    context: Context
    websocket: Any

    async def handle(self) -> None:
        """Run the connection with its credential check, then release its count."""
        recheck = asyncio.create_task(self._recheck_credentials())
        try:
            await super().handle()  # type: ignore[misc]
        finally:
            recheck.cancel()
            if self.context.counted is not None:
                self.context.services.connections.release(self.context.counted)
                self.context.counted = None

    async def _recheck_credentials(self) -> None:
        auth = self.context.services.auth
        interval = max(self.context.services.settings.auth_cache_seconds, 1.0)
        while True:
            await asyncio.sleep(interval)
            if self.context.counted is None:
                continue
            try:
                await auth.authenticate(self.context.authorization, local=self.context.local)
            except UnauthenticatedError as exc:
                logger.info("WebSocket of %s closed: %s", self.context.counted.id, exc.message)
                await self.websocket.close(CREDENTIALS_CLOSE, "Credentials expired or revoked")
                return


class LegacyWSHandler(_CountedConnection, BaseGraphQLWSHandler):
    """The legacy `graphql-ws` protocol, with the same `connection_init` deadline as
    graphql-transport-ws (close 4408 "Connection initialisation timeout"; the deadline
    is the router's `connection_init_wait_timeout`), and malformed messages closed with
    4400: text that is not JSON, JSON that is not an object with a string type, a
    malformed `start` without a string id. A `start` with an id that is malformed, or
    whose document is not a subscription (`_subscription_problem`), is answered with an
    `error` (BAD_REQUEST or OPERATION_NAME_REQUIRED) instead."""

    async def handle(self) -> None:
        """Run the connection; a watchdog closes it if no `connection_init` comes."""
        watchdog = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            watchdog.cancel()

    async def _close_without_init(self) -> None:
        timeout = self.view.connection_init_wait_timeout.total_seconds()
        await asyncio.sleep(timeout)
        if not self.connection_acknowledged:
            logger.info("graphql-ws connection closed: no connection_init in %gs", timeout)
            await self.websocket.close(INIT_TIMEOUT_CLOSE, "Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        """Dispatch a message after checking its shape."""
        if message is NOT_JSON:
            await self.websocket.close(
                INVALID_MESSAGE_CLOSE, "WebSocket message must be valid JSON"
            )
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.websocket.close(INVALID_MESSAGE_CLOSE, "Invalid message")
            return
        if message["type"] == "start" and (problem := _valid_start(message)):
            if isinstance(message.get("id"), str):
                await self._send_error(message["id"], problem, BAD_REQUEST)
            else:
                await self.websocket.close(INVALID_MESSAGE_CLOSE, problem)
            return
        if message["type"] == "start" and self.connection_acknowledged:
            # Parsed in a thread: the schema parses the document again, on the event loop
            # (a 256 KiB comment takes ~75 ms each time; this one does not block others).
            payload = message["payload"]
            max_tokens = self.context.services.settings.max_query_tokens
            if refused := await asyncio.to_thread(_subscription_problem, payload, max_tokens):
                logger.info("graphql-ws start refused: %s", refused[0])
                await self._send_error(message["id"], *refused)
                return
        if message["type"] == "stop" and not isinstance(message.get("id"), str):
            return
        await super().handle_message(message)

    async def _send_error(self, operation_id: str, message: str, code: str) -> None:
        error = error_entry(message, code)
        await self.send_message({"type": "error", "id": operation_id, "payload": error})


class TransportWSHandler(_CountedConnection, BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, with every message that breaks the protocol's types closed
    with 4400 like any other invalid message, instead of crashing the connection or
    failing as an internal error (strawberry only checks that keys exist): one that is
    not a JSON object (a number, a list, a string), a `subscribe` whose fields have the
    wrong types (`_valid_subscribe`: `"query": 123`), a `complete` without a string id,
    a `ping` or `pong` whose payload is not an object."""

    async def handle_message(self, message: Any) -> None:
        """Dispatch a message after checking its shape."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        kind = message["type"]
        problem = None
        if kind == "subscribe":
            problem = _valid_subscribe(message)
        elif kind == "complete" and not isinstance(message.get("id"), str):
            problem = "complete needs a string id"
        elif kind in ("ping", "pong") and not isinstance(message.get("payload"), _OBJECT):
            problem = f"a {kind} payload must be an object"
        if problem:
            logger.info("graphql-transport-ws message refused: %s", problem)
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class PostAssistRouter(GraphQLRouter):
    """`GraphQLRouter` that answers every HTTP error of its own (a body that is not
    JSON, not UTF-8, not an object; batching; a GET mutation) with a GraphQL-shaped
    JSON body and the status code, and speaks both WebSocket protocols with an init
    deadline of `init_timeout` seconds, at most `max_subscriptions` operations per
    connection, and messages of at most `init_max_bytes` before `connection_ack` and
    `max_message_bytes` after (bytes of UTF-8; None: no limit of its own; the smaller
    of the two applies before the ack)."""

    graphql_ws_handler_class = LegacyWSHandler
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = RefusingWebSocketAdapter  # type: ignore[assignment]

    def __init__(self, schema: Any, *, init_timeout: float, max_subscriptions: int,
                 max_message_bytes: int | None = None, init_max_bytes: int | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=init_timeout),
            max_subscriptions_per_connection=max_subscriptions,
            **kwargs,
        )
        self.max_message_bytes = max_message_bytes
        limits = [n for n in (init_max_bytes, max_message_bytes) if n is not None]
        self.init_max_bytes = min(limits) if limits else None

    @property
    def graphql_ide_html(self) -> str:
        """The GraphiQL page, loading its files from this server (`graph.transport.ide`)."""
        return offline_html()

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket at `connection_init`: the `Authorization` in its
        payload (see `authorization_from_params`), else the upgrade request's header.

        Refused without a principal (graphql-ws: a `connection_error` with
        UNAUTHENTICATED; then both protocols close with 4403 "Forbidden"), and when the
        principal already holds its cap of connections (`connection_cap`: graphql-ws, a
        `connection_error` with TOO_MANY_CONNECTIONS, `extensions.limit` and
        `extensions.setting`; then both close with 4929 and a reason such as "too many
        connections: WS_MAX_CONNECTIONS_PER_PRINCIPAL=20")."""
        services = context.services
        if context.counted is not None:  # a repeated graphql-ws connection_init
            services.connections.release(context.counted)
            context.counted = None
        authorization = (
            authorization_from_params(context.connection_params) or context.upgrade_authorization
        )
        try:
            principal = await services.auth.authenticate(authorization, local=context.local)
        except UnauthenticatedError as exc:
            logger.info("WebSocket connection_init refused: %s", exc.message)
            raise _refuse(context, exc.formatted, CREDENTIALS_CLOSE, "Forbidden") from None
        cap = connection_cap(principal, services.settings)
        if not services.connections.acquire(principal, cap.limit):
            logger.info("WebSocket refused: %s holds %d connections (%s)",
                        principal.id, cap.limit, cap.setting)  # fmt: skip
            message = (
                f"this principal already holds {cap.limit} open WebSocket connections, the "
                f"most {cap.setting} allows on one API process: close one, or raise "
                f"{cap.setting}"
            )
            error = error_entry(message, TOO_MANY_CONNECTIONS, limit=cap.limit, setting=cap.setting)
            reason = f"too many connections: {cap.setting}={cap.limit}"
            raise _refuse(context, error, TOO_MANY_CONNECTIONS_CLOSE, reason)
        context.principal = principal
        context.counted = principal
        context.authorization = authorization
        assert isinstance(context.request, HTTPConnection)
        setattr(context.request.state, _ACKNOWLEDGED_STATE, True)
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's `run`, with its HTTP errors as GraphQL-shaped JSON."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            if self.is_websocket_request(request):
                raise
            logger.info("HTTP %s: %s", exc.status_code, exc.reason)
            return JSONResponse(error_body(exc.reason), status_code=exc.status_code)

    def parse_json(self, data: str | bytes) -> Any:
        """The request body as JSON: UTF-8 only, an object (or a list, which batching
        refuses); HTTP 400 otherwise."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            parsed = json.loads(text)
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "the request body is not valid UTF-8") from exc
        except (json.JSONDecodeError, RecursionError) as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(parsed, (dict, list)):
            kind = type(parsed).__name__ if parsed is not None else "null"
            raise HTTPException(400, f"the request body must be a JSON object, not {kind}")
        return parsed


__all__ = [
    "CREDENTIALS_CLOSE",
    "MESSAGE_TOO_BIG_CLOSE",
    "TOO_MANY_CONNECTIONS_CLOSE",
    "LegacyWSHandler",
    "PostAssistRouter",
    "RefusingWebSocketAdapter",
    "TransportWSHandler",
    "close_reason",
]
