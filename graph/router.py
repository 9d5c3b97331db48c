"""The GraphQL router: Strawberry's FastAPI router with request bodies checked strictly
(HTTP 400 with a GraphQL-shaped body for anything that is not a GraphQL request), and a
legacy graphql-ws handler that closes connections that skip `connection_init` and
answers malformed messages instead of crashing.

A refused `connection_init` closes with a code that says why, on both protocols
(`CREDENTIALS_CLOSE`, `TOO_MANY_CONNECTIONS_CLOSE`); the README's "WebSocket close
codes" table lists every code the server uses."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET, UnsetType

from graph.auth import authorization_from_params, connection_cap
from graph.context import Context
from graph.errors import (
    BAD_REQUEST,
    TOO_MANY_CONNECTIONS,
    UnauthenticatedError,
    error_body,
    error_entry,
)
from graph.ide import offline_html

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
#: WebSockets (`graph.auth.connection_cap`). RFC 6455 leaves 4000-4999 to applications.
#: The protocol libraries there (the graphql-ws library, reference implementation of
#: graphql-transport-ws, and strawberry) use 4000 + an HTTP status (4400, 4401, 4403,
#: 4406, 4408, 4409, 4429, 4500, 4504) and 4004/4005 (client side); HTTP statuses end at
#: 599, so no code from 4600 up can collide with one they add later. 4900-4999 is
#: PostAssist's own block, and 4929 recalls HTTP 429 Too Many Requests, whose mirror,
#: 4429, already means "Too many initialisation requests" in graphql-transport-ws.
TOO_MANY_CONNECTIONS_CLOSE = 4929
#: The longest WebSocket close reason, in UTF-8 bytes (RFC 6455 5.5: a control frame
#: carries at most 125 bytes, 2 of them the code).
MAX_CLOSE_REASON_BYTES = 123
#: Where a refused `connection_init` leaves its close code and reason for
#: `RefusingWebSocketAdapter` (an attribute of the connection's `state`).
_REFUSAL_STATE = "postassist_refusal"


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
    """Strawberry's ASGI WebSocket adapter, except that the close after a refused
    `connection_init` uses the code and reason the refusal chose (`_refuse`): strawberry
    closes every `ConnectionRejectionError` alike (graphql-transport-ws 4403
    "Forbidden", graphql-ws 1011 "internal error"), so a client could not tell a bad key
    from a full connection cap."""

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
    4400 (or answered with an `error` for a bad `start` that has an id)."""

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
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.websocket.close(INVALID_MESSAGE_CLOSE, "Invalid message")
            return
        if message["type"] == "start" and (problem := _valid_start(message)):
            if isinstance(message.get("id"), str):
                error = error_entry(problem, BAD_REQUEST)
                await self.send_message({"type": "error", "id": message["id"], "payload": error})
            else:
                await self.websocket.close(INVALID_MESSAGE_CLOSE, problem)
            return
        if message["type"] == "stop" and not isinstance(message.get("id"), str):
            return
        await super().handle_message(message)


class TransportWSHandler(_CountedConnection, BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, with a message that is not a JSON object (a number, a
    list, a string) closed with 4400 like any other invalid message, instead of
    crashing the connection (strawberry only checks the keys of objects)."""

    async def handle_message(self, message: Any) -> None:
        """Dispatch a message after checking it is an object with a string type."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        await super().handle_message(message)


class PostAssistRouter(GraphQLRouter):
    """`GraphQLRouter` that answers every HTTP error of its own (a body that is not
    JSON, not UTF-8, not an object; batching; a GET mutation) with a GraphQL-shaped
    JSON body and the status code, and speaks both WebSocket protocols with an init
    deadline of `init_timeout` seconds and at most `max_subscriptions` operations per
    connection."""

    graphql_ws_handler_class = LegacyWSHandler
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = RefusingWebSocketAdapter  # type: ignore[assignment]

    def __init__(self, schema: Any, *, init_timeout: float, max_subscriptions: int,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(
            schema,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=init_timeout),
            max_subscriptions_per_connection=max_subscriptions,
            **kwargs,
        )

    @property
    def graphql_ide_html(self) -> str:
        """The GraphiQL page, loading its files from this server (`graph.ide`)."""
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
    "TOO_MANY_CONNECTIONS_CLOSE",
    "LegacyWSHandler",
    "PostAssistRouter",
    "RefusingWebSocketAdapter",
    "TransportWSHandler",
    "close_reason",
]
