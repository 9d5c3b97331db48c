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

The parts live apart: principals and credentials (`principals`), local mode's rules
(`local_mode`), API keys (`api_keys`) and the WebSocket caps (`connection_caps`); this
module decides the mode (`Authenticator`).

API keys that name no key cost a database read each: an address that sends too many
(`RATE_LIMIT_AUTH_FAILURES`) has its unknown keys refused without one for a while.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from db import keys
from db.engine import SessionFactory
from graph.errors import UnauthenticatedError
from graph.security.api_keys import KeyChecker
from graph.security.jwt_auth import JWTVerifier
from graph.security.local_mode import InsecureBindError, exposure, local_refusal, noted_peer
from graph.security.principals import LOCAL_PRINCIPAL, Principal, bearer_token
from graph.settings import Settings

logger = logging.getLogger(__name__)

Mode = Literal["required", "local", "disabled"]


class Authenticator:
    """Turns an `Authorization` value into a `Principal` (see the module for modes):
    API keys through `KeyChecker` (`api_keys`), JWTs through `JWTVerifier`."""

    def __init__(self, settings: Settings, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.jwt = JWTVerifier(settings) if settings.jwt_enabled else None
        self.mode: Mode = "disabled" if settings.auth_disabled else "required"
        self.api_keys = KeyChecker(settings, session_factory)
        self._keys_checked_at = 0.0

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
        if self.jwt is not None or await self.api_keys.any_active():
            self.mode = "required"
            logger.info("authentication required: API keys%s", " and JWTs" if self.jwt else "")
            return self.mode
        if (where := exposure(self.settings, bind_host)) is not None:
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

    async def _still_local(self) -> bool:
        """In local mode, look for a new key now and then; switch to required if one
        appeared."""
        now = time.monotonic()
        if now - self._keys_checked_at >= self.settings.auth_cache_seconds:
            self._keys_checked_at = now
            if await self.api_keys.any_active():
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
                raise local_refusal()
            raise UnauthenticatedError(
                'authentication required: send "Authorization: Bearer <API key or JWT>"'
            )
        if token.startswith(keys.TOKEN_PREFIX):
            return await self.api_keys.principal(token, peer or noted_peer() or "unknown")
        if self.jwt is None:
            raise UnauthenticatedError("the token is not a valid API key")
        identity = self.jwt.verify(token)
        return Principal(f"jwt:{identity.subject}", identity.name, admin=identity.admin)


__all__ = ["Authenticator", "Mode"]
