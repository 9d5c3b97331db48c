"""API keys as credentials (`KeyChecker`): a token that starts with `pa_` is read from
the database (`db.keys`) and trusted for `AUTH_CACHE_SECONDS`; one that names no key
counts against its peer address's budget (`RATE_LIMIT_AUTH_FAILURES`)."""

from __future__ import annotations

import time

from db import keys
from db.engine import SessionFactory
from graph.errors import UnauthenticatedError
from graph.security.principals import Principal
from graph.security.rate_limits import FailureThrottle, limiter_storage
from graph.settings import Settings

#: API keys remembered at once (checked ones and unknown ones), per process.
CACHE_SIZE = 10_000


class KeyChecker:
    """Turns an API key into its `Principal`. Keys are read from the database and
    trusted for `AUTH_CACHE_SECONDS` (so a revoked key stops working within that time);
    a token that names no key is remembered as bad for the same time. Each key that
    names none counts against its peer address's budget (`RATE_LIMIT_AUTH_FAILURES`, in
    Redis when the bus is); past it, keys not already known are refused without a
    database read until the window lets one through (`UNAUTHENTICATED` with
    `retryAfter`)."""

    def __init__(self, settings: Settings, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self.failures = FailureThrottle(
            settings.rate_limit_auth_failures, limiter_storage(settings.broadcast_url)
        )

    async def any_active(self) -> bool:
        """Whether the database holds an API key that is not revoked."""
        async with self.session_factory() as session:
            return await keys.count_active_keys(session=session) > 0

    async def principal(self, token: str, peer: str) -> Principal:
        """The principal of API key `token`, sent from address `peer`. Raises
        `UnauthenticatedError` for a malformed, unknown or revoked key, and with
        `retryAfter` (seconds) when `peer` has spent its budget of failures."""
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
