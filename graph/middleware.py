"""ASGI middleware: a cap on HTTP request bodies, checked before anything parses them."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class BodyLimitMiddleware:
    """Reject an HTTP request whose body is larger than `max_bytes` with HTTP 413 and a
    GraphQL-shaped JSON error (`extensions.code = PAYLOAD_TOO_LARGE`), before the app
    reads any of it.

    A `Content-Length` over the cap is refused at once, without reading the body. A
    body without one (chunked) is read here, chunk by chunk, and refused as soon as it
    passes the cap; a body within the cap is handed to the app from memory, so at most
    `max_bytes` are ever buffered. WebSocket and lifespan scopes pass through.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # the server refuses a malformed Content-Length
            if too_large:
                await self._refuse(send, f"declared {int(declared)} bytes")
                return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, f"more than {size} bytes sent")
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, self._replay(messages, receive), send)

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _refuse(self, send: Send, what: str) -> None:
        logger.info("request body refused: %s, the limit is %d", what, self.max_bytes)
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = json.dumps(
            {
                "data": None,
                "errors": [
                    {
                        "message": message,
                        "extensions": {"code": "PAYLOAD_TOO_LARGE", "maxBytes": self.max_bytes},
                    }
                ],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
