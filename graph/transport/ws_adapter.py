"""The WebSocket connection under both protocols: the close codes the server uses
(the README's "WebSocket close codes" table lists them), the refusal of a
`connection_init` with a code that says why (`refuse`), and `RefusingWebSocketAdapter`,
which measures every message before it is parsed (`WS_INIT_MAX_SIZE` until
`connection_ack`, then `WS_MAX_SIZE`: close 1009) and closes with a refusal's code."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from json import JSONDecodeError
from typing import Any

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived

from graph.api.context import Context

#: Every WebSocket refusal and close logs on the router's logger, whichever module of
#: the transport decides it (the README's "What is logged" names that one logger).
logger = logging.getLogger("graph.transport.router")

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
#: WebSockets (`graph.security.connection_caps.connection_cap`). RFC 6455 leaves
#: 4000-4999 to applications. The protocol libraries there (the graphql-ws library,
#: reference implementation of graphql-transport-ws, and strawberry) use 4000 + an HTTP
#: status (4400, 4401, 4403, 4406, 4408, 4409, 4429, 4500, 4504) and 4004/4005 (client
#: side); HTTP statuses end at 599, so no code from 4600 up can collide with one they add
#: later. 4900-4999 is PostAssist's own block, and 4929 recalls HTTP 429 Too Many
#: Requests, whose mirror, 4429, already means "Too many initialisation requests" in
#: graphql-transport-ws.
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


def close_reason(text: str) -> str:
    """`text` cut to at most MAX_CLOSE_REASON_BYTES of UTF-8 (never inside a character)."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def refuse(
    context: Context, error: dict[str, Any], code: int, reason: str
) -> ConnectionRejectionError:
    """The exception that refuses a `connection_init`: graphql-ws sends `error` in its
    `connection_error`; then both protocols close with `code` and `reason` (left on the
    connection's state for `RefusingWebSocketAdapter`)."""
    connection = context.request
    assert isinstance(connection, HTTPConnection)
    setattr(connection.state, _REFUSAL_STATE, (code, close_reason(reason)))
    return ConnectionRejectionError(error)


def mark_acknowledged(connection: HTTPConnection) -> None:
    """Note on `connection`'s state that its `connection_init` was acknowledged: from
    then on its messages may be as large as `WS_MAX_SIZE`."""
    setattr(connection.state, _ACKNOWLEDGED_STATE, True)


class RefusingWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's ASGI WebSocket adapter, except that

    - the close after a refused `connection_init` uses the code and reason the refusal
      chose (`refuse`): strawberry closes every `ConnectionRejectionError` alike
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
