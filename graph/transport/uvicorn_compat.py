"""The one place that touches uvicorn's private protocol classes: a deadline and a size
cap on reading a request head, which uvicorn does not have.

uvicorn times out an idle kept-alive connection (`timeout_keep_alive`, 5 s) but not one
that is still sending its request head: a connection that opens and sends half a head,
or one byte a second, stays open for good (600 of them stayed open for the whole 25 s
of a slow-head attack of `benchmarks.security --stalls`). Its default HTTP parser
(httptools) also has no cap on the head's size (2 MB of headers are read and
answered); h11's is 16 KiB.

`header_deadline_protocol` subclasses uvicorn's HTTP protocol (httptools when it is
installed, as uvicorn's "auto" picks, else h11) so that a request head must be complete
within `seconds` and within `HEAD_MAX_BYTES`; otherwise the client gets HTTP 408 or 431
with a GraphQL-shaped JSON body and the connection is closed. The deadline starts when a
connection opens, and on a kept-alive connection with the first byte after a response
(until then uvicorn's keep-alive timeout applies). The protocols' `cycle`,
`transport`, `loop`, `data_received`, `connection_made`, `connection_lost` and
`handle_websocket_upgrade` are uvicorn's own, checked against the installed version
below.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from db.compat import require_verified
from graph.errors import error_body

#: The uvicorn releases whose protocol classes this module was written against (PEP 440).
SUPPORTED = "==0.54.*"

require_verified(
    "uvicorn",
    SUPPORTED,
    seam="graph/transport/uvicorn_compat.py",
    check="the HTTP protocol classes uvicorn.protocols.http.httptools_impl.HttpToolsProtocol "
    "and h11_impl.H11Protocol (cycle, transport, loop, data_received, "
    "handle_websocket_upgrade)",
)

from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn without the [standard] extra
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)

#: The largest request head, in bytes: h11's own cap (`h11_max_incomplete_event_size`,
#: 16 KiB), applied to httptools too.
HEAD_MAX_BYTES = 16 * 1024


def _response(status: str, message: str, code: str, **extensions: Any) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, with a JSON error body."""
    body = json.dumps(error_body(message, code, **extensions)).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _HeadDeadline:
    """Mixin for a uvicorn HTTP protocol: a request head must be complete within
    `head_timeout` seconds and `HEAD_MAX_BYTES` (see the module)."""

    head_timeout: float
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _head_timer: asyncio.TimerHandle | None = None
    #: The request cycle that was the latest when the deadline was armed: a new one
    #: means a head was read since (a request in flight, or a new request to time).
    _head_after: Any = None
    _head_bytes: int = 0

    def _reading_head(self) -> bool:
        """No request is in flight: what arrives now is (part of) a request head."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_after = self.cycle
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self.transport.get_protocol() is not self or self.transport.is_closing():
            return  # upgraded to a WebSocket, or already closing
        if self._reading_head() and self.cycle is self._head_after:
            self._refuse(
                "408 Request Timeout",
                f"the request head did not arrive within {self.head_timeout:g} s",
                "REQUEST_TIMEOUT",
                seconds=self.head_timeout,
            )

    def _refuse(self, status: str, message: str, code: str, **extensions: Any) -> None:
        peer = self.transport.get_extra_info("peername")
        logger.info("HTTP %s from %s: %s", status[:3], peer and peer[0], message)
        self.transport.write(_response(status, message, code, **extensions))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:
        """uvicorn's, then the head deadline starts."""
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        """uvicorn's, after (re)starting the deadline for a new request head, and with
        the head's bytes counted against `HEAD_MAX_BYTES`."""
        reading = self._reading_head()
        if reading and (self._head_timer is None or self.cycle is not self._head_after):
            self._arm()
        super().data_received(data)  # type: ignore[misc]
        if self.transport.get_protocol() is not self or self.transport.is_closing():
            return  # upgraded to a WebSocket, or refused by the parser
        if reading and self._reading_head() and self.cycle is self._head_after:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_MAX_BYTES:
                self._refuse(
                    "431 Request Header Fields Too Large",
                    f"the request head is larger than {HEAD_MAX_BYTES} bytes",
                    "REQUEST_HEADER_FIELDS_TOO_LARGE",
                    maxBytes=HEAD_MAX_BYTES,
                )

    def handle_websocket_upgrade(self, *args: Any) -> None:
        """uvicorn's, with the deadline off: the WebSocket protocol owns the transport."""
        self._disarm()
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's, with the deadline off."""
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


def header_deadline_protocol(seconds: float, *, parser: str = "auto") -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class (for `uvicorn.run(http=...)`) whose request heads
    must be complete within `seconds` (> 0) and `HEAD_MAX_BYTES`, else HTTP 408
    `REQUEST_TIMEOUT` or 431 `REQUEST_HEADER_FIELDS_TOO_LARGE` and the connection is
    closed. `parser`: "httptools", "h11", or "auto" (httptools when installed, as
    uvicorn chooses). Raises ValueError for another parser, or "httptools" when it is
    not installed."""
    if parser not in ("auto", "httptools", "h11"):
        raise ValueError(f"unknown HTTP parser {parser!r}: use auto, httptools or h11")
    if parser == "httptools" and HttpToolsProtocol is None:
        raise ValueError("httptools is not installed (pip install 'uvicorn[standard]')")
    use_h11 = parser == "h11" or HttpToolsProtocol is None
    base: type[asyncio.Protocol] = H11Protocol if use_h11 else HttpToolsProtocol
    return type(f"HeadDeadline{base.__name__}", (_HeadDeadline, base), {"head_timeout": seconds})


__all__ = ["HEAD_MAX_BYTES", "header_deadline_protocol"]
