"""The request id: one per HTTP request and per WebSocket, taken from the client's
`X-Request-ID` when it is a sane one (printable ASCII, at most `MAX_LENGTH` characters),
made here otherwise; echoed in the response's `X-Request-ID` (a WebSocket's in its
handshake answer), bound to every log line of the request (`request_id`, and
`principal` once the GraphQL context knows it) and given to a bug's masked error as its
`extensions.requestId` (`graph.errors.log_errors`)."""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
#: Longest client-given id kept (W3C's traceparent is 55; a UUID 36).
MAX_LENGTH = 200


def new_request_id() -> str:
    """A fresh id: 16 hex digits (64 random bits), the shape `graph.errors` always used."""
    return uuid.uuid4().hex[:16]


#: What a client-given id may hold: letters, digits and `._:-/+=` (UUIDs, ULIDs,
#: traceparents, base64 ids); no space, quote or `=`-looking field can forge a log field.
_ID = re.compile(r"[A-Za-z0-9._:/+=-]+")


def accepted(value: str | None) -> str | None:
    """`value` if it may stand as a request id: 1 to `MAX_LENGTH` characters from
    `_ID`'s set (no space or quote: in a console log line `x principal=admin` would look
    like a field); else None."""
    if not value or len(value) > MAX_LENGTH or not _ID.fullmatch(value):
        return None
    return value


def current_request_id() -> str | None:
    """The request id bound to this context (None outside a request)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


class RequestIdMiddleware:
    """Pure ASGI middleware (so streamed answers and WebSockets pass untouched): picks
    the request id (see the module), puts it in `scope["state"]["request_id"]`, binds it
    for the logs while the request runs (and forgets `principal` after it), and adds
    `X-Request-ID` to the HTTP response start or the WebSocket accept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accepted(Headers(scope=scope).get(HEADER)) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            elif message["type"] == "websocket.accept":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            structlog.contextvars.unbind_contextvars("principal")
