"""Who is calling: principals, API keys and JWTs, the local mode, and WebSocket
connections per principal.

A request names its principal with `Authorization: Bearer <token>` (HTTP, the
WebSocket upgrade request, or the `connection_init` payload of either WebSocket
protocol). A token that starts with `pa_` is an API key (`db.keys`); any other is a JWT
(`graph.security.jwt_auth`).

Modes (decided at start-up, `Authenticator.start`):

* required: a key exists or JWTs are configured; every operation needs a principal.
* local: no key, no JWT, a loopback bind, loopback `ALLOWED_HOSTS` and no wildcard
  `CORS_ORIGINS`; a request made on this machine (`made_locally`: an allow-list of what
  is local) without credentials is the one implicit local principal (an admin: it sees
  every task, as before principals existed). A request that does send a token is still
  checked, and once a key is created the server switches to required within
  `AUTH_CACHE_SECONDS`.
* disabled: `AUTH_DISABLED=true`; every request is the local principal, tokens unread.

Binding to a non-loopback address (or allowing a non-loopback Host, or any origin) with
no key, no JWT and no `AUTH_DISABLED` refuses to start (`InsecureBindError`).

API keys that name no key cost a database read each: an address that sends too many
(`RATE_LIMIT_AUTH_FAILURES`) has its unknown keys refused without one for a while.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from db import keys
from db.engine import SessionFactory
from db.models import LOCAL_OWNER
from graph.errors import UnauthenticatedError
from graph.security.jwt_auth import JWTVerifier
from graph.security.rate_limits import FailureThrottle, limiter_storage
from graph.settings import Settings

logger = logging.getLogger(__name__)

Mode = Literal["required", "local", "disabled"]
#: The ASGI scope key `graph.transport.middleware.OriginGuard` sets to a request's
#: `Origin` when `CORS_ORIGINS` lists that origin by name; `not_local` lets such a page
#: act as the local principal (a page of any other origin never does).
LISTED_ORIGIN = "postassist.listed_origin"
#: API keys remembered at once (checked ones and unknown ones), per process.
CACHE_SIZE = 10_000
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


@dataclass(frozen=True)
class Principal:
    """A caller: `id` is what `Task.owner` stores (`key:<key id>` for an API key,
    `jwt:<sub>` for a JWT, `local` in local mode); an `admin` sees every task."""

    id: str
    name: str
    admin: bool = False

    def can_see(self, owner: str) -> bool:
        """Whether a task owned by `owner` is visible to this principal."""
        return self.admin or owner == self.id

    @property
    def owner_filter(self) -> str | None:
        """The owner to filter task lists by: None (every task) for an admin."""
        return None if self.admin else self.id


#: The one principal of local and disabled mode.
LOCAL_PRINCIPAL = Principal(LOCAL_OWNER, "local", admin=True)


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


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None when there is no
    value. Raises `UnauthenticatedError` for another scheme or an empty token."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError('use "Authorization: Bearer <API key or JWT>"')
    return token.strip()


def authorization_from_params(params: Any) -> str | None:
    """The `Authorization` value a WebSocket `connection_init` payload carries, as the
    clients send it: `{"Authorization": "Bearer ..."}` (any case), `{"headers":
    {"Authorization": ...}}` (Apollo's `connectionParams` habit), or a bare token as
    `authToken` / `token`."""
    if not isinstance(params, Mapping):
        return None
    for source in (params, params.get("headers")):
        if isinstance(source, Mapping):
            for key, value in source.items():
                if isinstance(key, str) and key.lower() == "authorization" and value:
                    return str(value)
    for key in ("authToken", "token"):
        if isinstance(params.get(key), str) and params[key]:
            return f"Bearer {params[key]}"
    return None


class Authenticator:
    """Turns an `Authorization` value into a `Principal` (see the module for modes).

    API keys are read from the database and trusted for `AUTH_CACHE_SECONDS` (so a
    revoked key stops working within that time); a token that names no key is
    remembered as bad for the same time. Each key that names none counts against its
    peer address's budget (`RATE_LIMIT_AUTH_FAILURES`, in Redis when the bus is); past
    it, keys not already known are refused without a database read until the window
    lets one through (`UNAUTHENTICATED` with `retryAfter`).
    """

    def __init__(self, settings: Settings, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.jwt = JWTVerifier(settings) if settings.jwt_enabled else None
        self.mode: Mode = "disabled" if settings.auth_disabled else "required"
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._keys_checked_at = 0.0
        self.failures = FailureThrottle(
            settings.rate_limit_auth_failures, limiter_storage(settings.broadcast_url)
        )

    async def start(self, bind_host: str) -> Mode:
        """Decide the mode for an API bound to `bind_host` and log it; return it.
        Raises `InsecureBindError` for a non-loopback bind without authentication."""
        if self.settings.auth_disabled:
            logger.warning("authentication is DISABLED (AUTH_DISABLED=true): every caller "
                           "is the local principal and sees every task")  # fmt: skip
            self.mode = "disabled"
            return self.mode
        if self.jwt is not None and not self.settings.jwt_audience:
            logger.warning("JWT_AUDIENCE is not set: any token of %s is accepted, whatever "
                           "service it was issued for", self.settings.jwt_issuer)  # fmt: skip
        if self.jwt is not None or await self._any_key():
            self.mode = "required"
            logger.info("authentication required: API keys%s", " and JWTs" if self.jwt else "")
            return self.mode
        public = [h for h in self.settings.allowed_hosts if h == "*" or not is_loopback(h)]
        if not is_loopback(bind_host) or public or "*" in self.settings.cors_origins:
            where = (
                bind_host
                if not is_loopback(bind_host)
                else f"ALLOWED_HOSTS {public}"
                if public
                else "CORS_ORIGINS=* (any web page)"
            )
            raise InsecureBindError(
                f"refusing to serve on {where} without authentication: create a key "
                "(postassist keys create --name NAME), configure JWT_ISSUER, or set "
                "AUTH_DISABLED=true if a gateway in front authenticates callers"
            )
        self.mode = "local"
        self._keys_checked_at = time.monotonic()
        logger.warning("local mode: no API key or JWT configured, so every caller on this "
                       "machine is the local principal; create a key to require one")  # fmt: skip
        return self.mode

    async def _any_key(self) -> bool:
        async with self.session_factory() as session:
            return await keys.count_active_keys(session=session) > 0

    async def _still_local(self) -> bool:
        """In local mode, look for a new key now and then; switch to required if one
        appeared."""
        now = time.monotonic()
        if now - self._keys_checked_at >= self.settings.auth_cache_seconds:
            self._keys_checked_at = now
            if await self._any_key():
                self.mode = "required"
                logger.warning("an API key exists now: authentication is required from here on")
        return self.mode == "local"

    async def authenticate(
        self, authorization: str | None, *, local: bool, peer: str | None = None
    ) -> Principal:
        """The principal of an `Authorization` header value (None: none sent). `local`
        says the request was made on this machine (`made_locally`); in local mode only
        such requests may go without credentials. `peer` is the client's address that
        failed keys are counted by (default: the one `made_locally` noted for this
        task). Raises `UnauthenticatedError` when a principal is needed and none is
        proven, with `retryAfter` (seconds) when `peer` has spent its budget of failures
        (`RATE_LIMIT_AUTH_FAILURES`)."""
        if self.mode == "disabled":
            return LOCAL_PRINCIPAL
        token = bearer_token(authorization)
        if token is None:
            if self.mode == "local" and await self._still_local():
                if local:
                    return LOCAL_PRINCIPAL
                why = _NOT_LOCAL.get()
                raise UnauthenticatedError(
                    "this server runs in local mode and serves without credentials only "
                    "requests made on this machine: from a loopback address, to a loopback "
                    "name, with no proxy header and no other site's Origin"
                    + (f" (this one was not: {why})" if why else "")
                    + "; create an API key to serve others"
                )
            raise UnauthenticatedError(
                'authentication required: send "Authorization: Bearer <API key or JWT>"'
            )
        if token.startswith(keys.TOKEN_PREFIX):
            return await self._key_principal(token, peer or _PEER.get() or "unknown")
        if self.jwt is None:
            raise UnauthenticatedError("the token is not a valid API key")
        identity = self.jwt.verify(token)
        return Principal(f"jwt:{identity.subject}", identity.name, admin=identity.admin)

    async def _key_principal(self, token: str, peer: str) -> Principal:
        if not keys.TOKEN_SHAPE.fullmatch(token):
            raise UnauthenticatedError("the API key is not valid (malformed)")
        digest = keys.hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or cached[1] <= now:
            # a key this process has seen valid is re-read whatever its address spent: a
            # client sharing the address (a proxy, a NAT) must not lock a real key out
            known = cached is not None and cached[0] is not None
            retry_after = None if known else await self.failures.retry_after(peer)
            if retry_after is not None:
                raise UnauthenticatedError(
                    f"too many unknown API keys from {peer[:100]} (RATE_LIMIT_AUTH_FAILURES="
                    f"{self.settings.rate_limit_auth_failures}): retry in {retry_after} s",
                    retryAfter=retry_after,
                )
            async with self.session_factory() as session:
                key = await keys.find_key(session=session, token=token)
            principal = Principal(f"key:{key.id}", key.name, key.admin) if key else None
            if principal is None:
                await self.failures.record(peer)
            if len(self._cache) >= CACHE_SIZE:
                self._evict(now)
            cached = (principal, now + self.settings.auth_cache_seconds)
            self._cache[digest] = cached
        if cached[0] is None:
            raise UnauthenticatedError("the API key is not valid (unknown or revoked)")
        return cached[0]

    def _evict(self, now: float) -> None:
        """Make room: drop expired entries, then unknown tokens (a flood of made-up
        keys must not push out the real ones), then everything."""
        for digest, (principal, expires) in list(self._cache.items()):
            if expires <= now or principal is None:
                del self._cache[digest]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()


@dataclass(frozen=True)
class ConnectionCap:
    """How many WebSockets a principal may hold open in one API process (`limit`), and
    the environment variable that sets it (`setting`), for refusals that name both."""

    limit: int
    setting: str


def connection_cap(principal: Principal, settings: Settings) -> ConnectionCap:
    """The cap on `principal`'s open WebSockets: `WS_MAX_CONNECTIONS_LOCAL` (default 200)
    for the local principal, which stands for one person on this machine (local mode) or
    for everyone behind an authenticating gateway (disabled mode), so a dashboard with
    many tabs or a script that follows 50 tasks fits; `WS_MAX_CONNECTIONS_PER_PRINCIPAL`
    (default 20) for a key's or a JWT's principal."""
    if principal.id == LOCAL_OWNER:
        return ConnectionCap(settings.ws_max_connections_local, "WS_MAX_CONNECTIONS_LOCAL")
    return ConnectionCap(
        settings.ws_max_connections_per_principal, "WS_MAX_CONNECTIONS_PER_PRINCIPAL"
    )


class ConnectionLimiter:
    """Counts the open WebSocket connections of each principal in this process;
    `acquire` refuses past a cap: the one it is given (`connection_cap`), else `limit`
    (`WS_MAX_CONNECTIONS_PER_PRINCIPAL`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, principal: Principal, limit: int | None = None) -> bool:
        """Count one more connection of `principal`; False (and nothing counted) when it
        already holds `limit` (default: `self.limit`)."""
        if self.open[principal.id] >= (self.limit if limit is None else limit):
            return False
        self.open[principal.id] += 1
        return True

    def release(self, principal: Principal) -> None:
        """Count one connection of `principal` less."""
        self.open[principal.id] -= 1
        if self.open[principal.id] <= 0:
            del self.open[principal.id]


__all__ = [
    "LOCAL_PRINCIPAL",
    "Authenticator",
    "ConnectionCap",
    "ConnectionLimiter",
    "InsecureBindError",
    "Principal",
    "authorization_from_params",
    "bearer_token",
    "connection_cap",
    "host_name",
    "is_loopback",
    "made_locally",
    "not_local",
]
