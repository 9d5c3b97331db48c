"""One signed webhook POST (`WebhookSender.send`): the body, the Standard Webhooks headers
signed at the moment of sending, the address guard, and what the answer was.

The URL's host is resolved and checked at every attempt (`addresses.resolve`) and the
connection goes to a checked address (the next one when it refuses: the host's other
addresses are tried in turn), with the URL's host, IDNA-encoded, as the Host header and
TLS name: no second lookup, so no DNS rebinding. No redirect is followed (a 3xx is a
failure), the whole attempt is bounded by `ATTEMPT_TIMEOUT` and at most
`MAX_RESPONSE_BYTES` of the answer is read. Connections are not kept alive: a kept TLS
connection, pooled by address, could otherwise carry a delivery for another host of the
same address (a CDN) over a certificate checked for the first. Whatever goes wrong
becomes a failed `Outcome`, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from agents.integrations.addresses import AddressRefusedError, resolve
from agents.integrations.webhooks import body, signed_headers

#: Seconds one attempt may take, connection and answer included (Standard Webhooks
#: and most senders allow 10-15 s; a receiver should answer at once and work later).
ATTEMPT_TIMEOUT = 10.0
#: Bytes of an answer read at most; the rest is dropped.
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of a failed answer's body kept in `WebhookAttempt.error`.
ERROR_BODY_CHARS = 200
USER_AGENT = "PostAssist-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: the answer's `status_code` (None: none came), the `error`
    (None: success), how long it took (`latency_ms`) and when it was signed and sent
    (`sent_at`, UTC)."""

    status_code: int | None
    error: str | None
    latency_ms: float
    sent_at: datetime


@dataclass(frozen=True)
class Message:
    """What one delivery sends: its `webhook-id`, the event name, the body's `data`
    (fixed when the event committed) and the URL."""

    message_id: str
    event_type: str
    data: dict[str, Any]
    url: str


class WebhookSender:
    """Sends signed webhook POSTs through one HTTP client (`aclose` it); private
    addresses only with `allow_private`."""

    def __init__(self, *, allow_private: bool, max_connections: int = 16) -> None:
        self.allow_private = allow_private
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=0)
        self.http = httpx.AsyncClient(
            follow_redirects=False, timeout=ATTEMPT_TIMEOUT, limits=limits, trust_env=False
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def send(self, message: Message, secret: str) -> Outcome:
        """POST `message` signed with `secret` (timestamped now); the `Outcome`."""
        sent_at = datetime.now(UTC)
        occurred = str(message.data.get("occurredAt"))
        content = json.dumps(
            body(message.event_type, occurred, message.data), separators=(",", ":")
        )
        headers = {
            **signed_headers(secret, message.message_id, content, sent_at),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        start = time.perf_counter()

        def failed(error: str, code: int | None = None) -> Outcome:
            return Outcome(code, error[:500], _ms(start), sent_at)

        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                code, answer, location = await self._post(message.url, content, headers)
        except TimeoutError:
            return failed(f"no answer within {ATTEMPT_TIMEOUT:g} s")
        except AddressRefusedError as exc:
            return failed(f"address refused: {exc}")
        except Exception as exc:  # a refused connection, TLS, a bad URL: a failed attempt
            return failed(f"{type(exc).__name__}: {exc}")
        if 200 <= code < 300:
            return Outcome(code, None, _ms(start), sent_at)
        if 300 <= code < 400:
            return failed(f"HTTP {code}: redirect to {location!r} not followed", code)
        text = answer[: ERROR_BODY_CHARS * 4].decode("utf-8", "replace")[:ERROR_BODY_CHARS]
        return failed(f"HTTP {code}: {text}".strip(), code)

    async def _post(
        self, url: str, content: str, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        """POST to each checked address of `url` until one connects; the answer's
        status code, its first `MAX_RESPONSE_BYTES` and its Location header."""
        target = await resolve(url, allow_private=self.allow_private)
        parts = urlsplit(target.url)
        host = target.host.encode("idna").decode("ascii")
        default_port = 443 if parts.scheme.lower() == "https" else 80
        shown = f"[{host}]" if ":" in host else host
        headers = {
            **headers,
            "host": shown if target.port == default_port else f"{shown}:{target.port}",
        }
        extensions = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
        auth = None
        if parts.username:
            auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
        for n, address in enumerate(target.addresses):
            literal = f"[{address}]" if address.version == 6 else str(address)
            pinned = urlunsplit(
                (parts.scheme, f"{literal}:{target.port}", parts.path, parts.query, "")
            )
            request = self.http.build_request(
                "POST", pinned, content=content, headers=headers, extensions=extensions
            )
            try:
                response = await self.http.send(request, stream=True, auth=auth)
            except httpx.ConnectError:
                if n == len(target.addresses) - 1:
                    raise
                continue
            try:
                answer = bytearray()
                async for chunk in response.aiter_raw():
                    answer += chunk
                    if len(answer) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
            return response.status_code, bytes(answer), response.headers.get("location", "")
        raise AddressRefusedError(f"{target.host} has no address to connect to")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


__all__ = [
    "ATTEMPT_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "Message",
    "Outcome",
    "WebhookSender",
]
