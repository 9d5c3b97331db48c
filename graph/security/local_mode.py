"""Local mode's rules: which requests were made on this machine (`made_locally`, an
allow-list: loopback addresses, a loopback `Host`, only headers a client here sends, no
other site's `Origin`), what would expose a server without authentication to others
(`exposure`, refused with `InsecureBindError`), and the refusal of a request from
elsewhere (`local_refusal`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from graph.errors import UnauthenticatedError
from graph.settings import Settings

#: The ASGI scope key `graph.transport.middleware.OriginGuard` sets to a request's
#: `Origin` when `CORS_ORIGINS` lists that origin by name; `not_local` lets such a page
#: act as the local principal (a page of any other origin never does).
LISTED_ORIGIN = "postassist.listed_origin"
#: Every request header a client on this machine sends by itself (browsers, GraphiQL,
#: curl, httpx, websockets, Apollo Client, urql, Relay, Postman, this project's CLI): RFC 9110's
#: request headers, CORS preflights, RFC 6455's handshake, the GraphQL clients' own and
#: W3C trace context. A request with any other header is not taken for local
#: (`made_locally`): this is an allow-list, so every proxy header, named here or not
#: (`Via`, `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `True-Client-IP`,
#: `CF-Connecting-IP`, `X-Client-IP`, `Fastly-Client-IP`, `X-Envoy-*`, ...), is out.
LOCAL_HEADERS = frozenset(
    {
        "host", "connection", "keep-alive", "te", "upgrade", "expect", "transfer-encoding",
        "content-length", "content-type", "content-encoding", "content-language",
        "accept", "accept-encoding", "accept-language", "accept-charset",
        "authorization", "cookie", "user-agent", "referer", "origin", "dnt", "priority",
        "cache-control", "pragma", "upgrade-insecure-requests", "purpose", "range",
        "save-data", "alt-used",  # Chrome's data saver, Firefox over Alt-Svc
        "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
        "access-control-request-method", "access-control-request-headers",
        "access-control-request-private-network",
        "apollo-require-preflight", "apollographql-client-name",
        "apollographql-client-version", "x-apollo-operation-name", "x-requested-with",
        # GraphiQL's page sends a csrftoken cookie's value (another app on localhost may
        # have set one: cookies ignore the port).
        "x-csrftoken",
        # Postman sends one with every request unless told not to.
        "postman-token",
        "traceparent", "tracestate", "baggage",
        # What a browser's EventSource sends when it reconnects (GraphQL over SSE).
        "last-event-id",
    }
)  # fmt: skip
#: Header name prefixes a local client sends: the Fetch standard's `Sec-` headers
#: (`Sec-Fetch-*`, `Sec-CH-UA*`, `Sec-WebSocket-*`, `Sec-GPC`), which only a browser or a
#: WebSocket client sets (a page's script cannot).
LOCAL_HEADER_PREFIXES = ("sec-",)
#: The peer address of the request this task serves (noted by `made_locally`, which
#: every request and WebSocket upgrade passes before it is authenticated): failed
#: authentications are counted per address (`Authenticator.authenticate`).
_PEER: ContextVar[str | None] = ContextVar("postassist_peer", default=None)
#: Why the request this task serves is not local (`not_local`; None: it is), noted by
#: `made_locally` so that local mode's refusal names the header or origin at fault.
_NOT_LOCAL: ContextVar[str | None] = ContextVar("postassist_not_local", default=None)


class InsecureBindError(RuntimeError):
    """The API would listen on a non-loopback address without authentication."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a bind address or name) only accepts connections from this
    machine: `localhost`, 127.0.0.0/8 or ::1."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name part of a `Host` header value: `[::1]:8000` -> `[::1]`, `localhost:8000`
    -> `localhost`."""
    host = host.strip()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def not_local(scope: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """Why a request (ASGI `scope` and its `headers`) was not made on this machine, or
    None when it was. Local is an allow-list: every one of these holds.

    * It reached a loopback address of the server (`scope["server"]`: the socket it came
      in on, whatever address the server was bound to) from a loopback address
      (`scope["client"]`).
    * Its `Host` names this machine: `localhost`, 127.0.0.0/8 or `[::1]`, any port.
    * Each of its headers is one a client here sends by itself (`LOCAL_HEADERS`,
      `LOCAL_HEADER_PREFIXES`), so no proxy header of any kind.
    * It has no `Origin`, the server's own (the `Origin`'s host and port equal `Host`),
      or one `OriginGuard` found listed in `CORS_ORIGINS` by name (never through `*`).

    A proxy on this machine that adds no header and sets a loopback `Host` cannot be
    told apart from a local client: put one in front only with authentication on."""
    server, client = scope.get("server"), scope.get("client")
    if not server or not is_loopback(str(server[0])):
        return "it reached a non-loopback address of the server"
    if not client or not is_loopback(str(client[0])):
        return "it came from a non-loopback address"
    host = headers.get("host")
    if host is None or not is_loopback(host_name(host)):
        return "its Host is not a loopback name"
    for name in headers.keys():
        name = name.lower()
        if name not in LOCAL_HEADERS and not name.startswith(LOCAL_HEADER_PREFIXES):
            return f"it carries the header {name[:100]}, which a client here does not send"
    origin = headers.get("origin")
    same = origin is not None and urlsplit(origin.lower()).netloc == host.strip().lower()
    if origin is not None and not same and scope.get(LISTED_ORIGIN) != origin:
        return f"it comes from a page of another origin ({origin[:100]})"
    return None


def made_locally(scope: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """Whether a request (ASGI `scope` and its `headers`) was made on this machine
    (`not_local` says what that takes). Also notes the request's peer address for this
    task, which failed authentications are counted by (`Authenticator.authenticate`),
    and why it is not local, which local mode's refusal then names."""
    client = scope.get("client")
    _PEER.set(str(client[0]) if client else None)
    why = not_local(scope, headers)
    _NOT_LOCAL.set(why)
    return why is None


def noted_peer() -> str | None:
    """The peer address `made_locally` noted for the request this task serves."""
    return _PEER.get()


def local_refusal() -> UnauthenticatedError:
    """The refusal, in local mode, of a request without credentials that was not made on
    this machine; it names why not, as `made_locally` noted it."""
    why = _NOT_LOCAL.get()
    return UnauthenticatedError(
        "this server runs in local mode and serves without credentials only "
        "requests made on this machine: from a loopback address, to a loopback "
        "name, with no proxy header and no other site's Origin"
        + (f" (this one was not: {why})" if why else "")
        + "; create an API key to serve others"
    )


def exposure(settings: Settings, bind_host: str) -> str | None:
    """What would let callers elsewhere reach a server bound to `bind_host` without
    authentication: the non-loopback bind, the non-loopback `ALLOWED_HOSTS`, or
    `CORS_ORIGINS=*`; None when only this machine can (local mode may serve)."""
    public = [h for h in settings.allowed_hosts if h == "*" or not is_loopback(h)]
    if not is_loopback(bind_host) or public or "*" in settings.cors_origins:
        return (
            bind_host
            if not is_loopback(bind_host)
            else f"ALLOWED_HOSTS {public}"
            if public
            else "CORS_ORIGINS=* (any web page)"
        )
    return None
