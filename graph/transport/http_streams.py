"""Subscriptions over plain HTTP: what a streaming answer (GraphQL over SSE, Apollo's
multipart subscriptions) holds while it is open, and gives back however it ends.

A stream counts as one of its principal's connections in the same
`ConnectionLimiter` as its WebSockets (`services.connections`, capped by
`connection_cap`: `WS_MAX_CONNECTIONS_PER_PRINCIPAL`, `WS_MAX_CONNECTIONS_LOCAL`), so a
principal holds at most that many WebSockets and streams together in one API process;
past the cap a request is answered HTTP 429 `TOO_MANY_CONNECTIONS` before anything runs
(`StreamRefused`). The count is given back when the response ends: the operation
completed, the client went away (starlette cancels the body, and with it the
subscription's generator: its followers end), or the credentials it was opened with
stopped working (checked again between chunks, at most every `AUTH_CACHE_SECONDS` and
at least every heartbeat: 15 s on SSE, 5 s on multipart; the stream then ends).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from graph.api.context import Context
from graph.errors import TOO_MANY_CONNECTIONS, UnauthenticatedError, error_body
from graph.security.connection_caps import connection_cap
from graph.security.principals import Principal

logger = logging.getLogger("graph.transport.router")


class StreamRefused(Exception):
    """A streaming request refused before it ran; `response` is its answer."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def acquire_stream(context: Context, protocol: str) -> Principal:
    """Count one more open stream of the context's principal and return it; raises
    `StreamRefused` (HTTP 429, `TOO_MANY_CONNECTIONS` with `limit` and `setting`) when
    it already holds its cap of connections, and `UnauthenticatedError` without one."""
    principal = context.principal
    services = context.services
    cap = connection_cap(principal, services.settings)
    if not services.connections.acquire(principal, cap.limit):
        logger.info("%s stream refused: %s holds %d connections (%s)",
                    protocol, principal.id, cap.limit, cap.setting)  # fmt: skip
        message = (
            f"this principal already holds {cap.limit} open WebSocket connections and HTTP "
            f"streams, the most {cap.setting} allows on one API process: close one, or "
            f"raise {cap.setting}"
        )
        body = error_body(message, TOO_MANY_CONNECTIONS, limit=cap.limit, setting=cap.setting)
        raise StreamRefused(JSONResponse(body, status_code=429))
    return principal


class CountedStream(StreamingResponse):
    """A `StreamingResponse` that gives back its principal's count (`release`) when it
    ends, however it ends, and stops when `context`'s credentials no longer
    authenticate (see the module)."""

    def __init__(
        self,
        content: AsyncIterator[str],
        *,
        context: Context,
        release: Callable[[], None],
        source: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._checked(content, context), **kwargs)
        self._release = release
        #: The operation's result stream (`schema.stream`'s), closed at the end.
        self._source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the stream; then close its body and the operation's result stream
        here, not in the garbage collector, and give back the count.

        A disconnect leaves both open: starlette does not close a body it stopped
        reading, and Strawberry's heartbeat merge, cancelling its reader while that
        waits to hand over a chunk, does not close the result stream. Left to the
        collector, the subscription's generators (the resolver's, `EventLog.follow`,
        `Tails.follow_task`) were finalized in one sweep, in any order, and one
        closing another that was already closing failed (`aclose(): asynchronous
        generator is already running`) in about one Apollo disconnect of ten."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                if self._source is not None:
                    await self._source.aclose()
            finally:
                self._release()

    @staticmethod
    async def _checked(content: AsyncIterator[str], context: Context) -> AsyncIterator[str]:
        """`content`'s chunks until it ends or the credentials fail (checked before a
        chunk when `AUTH_CACHE_SECONDS`, at least 1 s, passed since the last check)."""
        services = context.services
        interval = max(services.settings.auth_cache_seconds, 1.0)
        clock = asyncio.get_running_loop().time
        checked = clock()
        try:
            async for chunk in content:
                if clock() - checked >= interval:
                    checked = clock()
                    try:
                        await services.auth.authenticate(context.authorization, local=context.local)
                    except UnauthenticatedError as exc:
                        who = context.principal.id
                        logger.info("HTTP stream of %s ended: %s", who, exc.message)
                        return
                yield chunk
        finally:
            aclose = getattr(content, "aclose", None)
            if aclose is not None:
                await aclose()


__all__ = ["CountedStream", "StreamRefused", "acquire_stream"]
