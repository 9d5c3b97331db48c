"""ASGI middleware: a cap on HTTP request bodies, checked before anything parses them,
the cross-origin guard for HTTP and WebSocket requests, and the security headers of
every HTTP response."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.errors import error_body
from graph.security.local_mode import LISTED_ORIGIN

logger = logging.getLogger(__name__)

#: What every HTTP response of the app carries (`SecurityHeadersMiddleware`): no page
#: may be framed by another (clickjacking: X-Frame-Options for old browsers, CSP
#: `frame-ancestors` for the rest), no response is sniffed into another type, and no
#: URL is sent on as a Referer. The CSP holds only what cannot break the GraphiQL page
#: (its script is inline): no `<base>`, no plugins.
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class BodyLimitMiddleware:
    """Reject an HTTP request whose body is larger than `max_bytes` with HTTP 413 and a
    GraphQL-shaped JSON error (`extensions.code = PAYLOAD_TOO_LARGE`), before the app
    reads any of it; and one whose body is not all there within `read_timeout` seconds
    of its head (None: no deadline) with HTTP 408 `REQUEST_TIMEOUT`, closing the
    connection (`HTTP_BODY_TIMEOUT_SECONDS`: a client sending a byte at a time would
    otherwise hold its connection and this buffer for good).

    A `Content-Length` over the cap is refused at once, without reading the body. A
    body without one (chunked) is read here, chunk by chunk, and refused as soon as it
    passes the cap; a body within the cap is handed to the app from memory, so at most
    `max_bytes` are ever buffered. A client that disconnects before its body is complete
    is one INFO line, and the app never sees the request (it would fail reading it with
    starlette's `ClientDisconnect`). WebSocket and lifespan scopes pass through.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

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
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        logger.info("client disconnected after %d bytes of its request body", size)
                        return
                    messages.append(message)
                    if message["type"] != "http.request":
                        break
                    size += len(message.get("body", b""))
                    if size > self.max_bytes:
                        await self._refuse(send, f"more than {size} bytes sent")
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            logger.info("request body not complete after %gs (%d bytes)", self.read_timeout, size)
            message = f"the request body did not arrive within {self.read_timeout:g} s"
            body = error_body(message, "REQUEST_TIMEOUT", seconds=self.read_timeout)
            await self._send(send, 408, body)
            return
        await self.app(scope, self._replay(messages, receive), send)

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _refuse(self, send: Send, what: str) -> None:
        logger.info("request body refused: %s, the limit is %d", what, self.max_bytes)
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = error_body(message, "PAYLOAD_TOO_LARGE", maxBytes=self.max_bytes)
        await self._send(send, 413, body)

    @staticmethod
    async def _send(send: Send, status: int, error: dict[str, object]) -> None:
        """Answer `status` with the JSON `error` and close the connection (the rest of
        the body is never read)."""
        body = json.dumps(error).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class OriginGuard:
    """Refuse (HTTP 403, or a WebSocket handshake denied with 403) a request a browser
    sent from a page of another origin, unless that origin is in `allowed_origins`
    (`CORS_ORIGINS`; `*` allows any).

    Browsers send `Origin` with every cross-origin request and every WebSocket
    handshake; a request without one (curl, server-side clients) passes. A page of the
    same origin (the `Origin`'s host and port equal the `Host` header, e.g. GraphiQL
    served here) passes. This stops a web page the user happens to open from driving a
    local-mode server (cross-site request forgery, WebSocket hijacking); with
    `CORSMiddleware` in front, preflights of allowed origins are answered before this.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = {origin.rstrip("/").lower() for origin in allowed_origins}

    def listed(self, origin: str) -> bool:
        """Whether `origin` is in `CORS_ORIGINS` by name (not only through `*`)."""
        return origin.rstrip("/").lower() in self.allowed

    def allows(self, origin: str, host: str | None) -> bool:
        """Whether a request with `Origin: origin` and `Host: host` may proceed."""
        if "*" in self.allowed or self.listed(origin):
            return True
        return host is not None and urlsplit(origin.lower()).netloc == host.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self.allows(origin, headers.get("host")):
                logger.info("%s from origin %s refused", scope["type"], origin[:200])
                message = f"origin {origin[:200]} is not allowed (CORS_ORIGINS)"
                body = error_body(message, "FORBIDDEN_ORIGIN")
                await JSONResponse(body, status_code=403)(scope, receive, send)
                return
            if origin is not None and self.listed(origin):
                scope[LISTED_ORIGIN] = origin  # graph.security.local_mode.not_local trusts it
        await self.app(scope, receive, send)


class HostGuard(TrustedHostMiddleware):
    """Starlette's `TrustedHostMiddleware` (HTTP 400 for a `Host` not in
    `ALLOWED_HOSTS`, WebSocket handshakes included), except for the probe paths in
    `probe_paths`: orchestrators probe by IP address (Kubernetes sends the pod's IP as
    `Host`), and the probes hold no data."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str], probe_paths: set[str]) -> None:
        super().__init__(app, allowed_hosts=allowed_hosts, www_redirect=False)
        self.probe_paths = probe_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.probe_paths:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class SecurityHeadersMiddleware:
    """Add `SECURITY_HEADERS` to every HTTP response that does not set them itself: the
    GraphiQL page at /graphql, its files under /ide/, the landing pages and every
    GraphQL answer. WebSocket and lifespan scopes pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
