"""The two WebSocket protocols, hardened: `LegacyWSHandler` (graphql-ws, with the
`connection_init` deadline graphql-transport-ws has) and `TransportWSHandler`
(graphql-transport-ws); both close a malformed message with 4400 or answer it with an
`error`, never a traceback, and check an open connection's credentials again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graph.api.context import Context
from graph.errors import BAD_REQUEST, UnauthenticatedError, error_entry
from graph.transport.ws_adapter import (
    CREDENTIALS_CLOSE,
    INIT_TIMEOUT_CLOSE,
    INVALID_MESSAGE_CLOSE,
    NOT_JSON,
)
from graph.transport.ws_messages import start_problem, subscribe_problem, subscription_problem

#: Every WebSocket refusal and close logs on the router's logger, whichever module of
#: the transport decides it (the README's "What is logged" names that one logger).
logger = logging.getLogger("graph.transport.router")

#: A JSON object, or absent/null.
_OBJECT = (dict, type(None))


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
    whose document is not a subscription (`subscription_problem`), is answered with an
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
        if message["type"] == "start" and (problem := start_problem(message)):
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
            if refused := await asyncio.to_thread(subscription_problem, payload, max_tokens):
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
    wrong types (`subscribe_problem`: `"query": 123`), a `complete` without a string id,
    a `ping` or `pong` whose payload is not an object."""

    async def handle_message(self, message: Any) -> None:
        """Dispatch a message after checking its shape."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        kind = message["type"]
        problem = None
        if kind == "subscribe":
            problem = subscribe_problem(message)
        elif kind == "complete" and not isinstance(message.get("id"), str):
            problem = "complete needs a string id"
        elif kind in ("ping", "pong") and not isinstance(message.get("payload"), _OBJECT):
            problem = f"a {kind} payload must be an object"
        if problem:
            logger.info("graphql-transport-ws message refused: %s", problem)
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)
