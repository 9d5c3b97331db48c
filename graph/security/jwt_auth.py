"""Checking JWTs with PyJWT against `JWT_ISSUER`, `JWT_AUDIENCE` and a key: the HS256
`JWT_SECRET`, or RS256/ES256 from `JWT_PUBLIC_KEY_FILE` or `JWT_JWKS_FILE`.
`graph.security.auth` turns the identity into the principal `jwt:<sub>`."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import jwt

from graph.errors import UnauthenticatedError
from graph.settings import Settings

logger = logging.getLogger(__name__)

#: What a client is told about any JWT that is refused: why goes to the server log only
#: (PyJWT's messages name key types and internals, and one of them printed a generator's
#: repr), so a caller learns nothing from trying tokens.
INVALID_JWT = "the JWT is not valid"
#: The longest reason logged for a refused JWT, in characters.
MAX_REASON_CHARS = 300


class JWTIdentity(NamedTuple):
    """Who a valid JWT names: its `sub`, a display `name` (the `name` claim, else the
    subject), and whether its scopes make it an admin."""

    subject: str
    name: str
    admin: bool


class JWTVerifier:
    """Checks JWTs: signature (HS256 with the secret; RS256/ES256 with the PEM key or
    the JWKS key named by `kid`), `iss`, `aud` (when `JWT_AUDIENCE` is set), `exp`
    (required), `nbf`, with `JWT_LEEWAY_SECONDS` of clock skew.

    Raises `ValueError` at construction for an unreadable key file."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_seconds
        self.admin_scope = settings.jwt_admin_scope
        self.secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self.public_key = (
            settings.jwt_public_key_file.read_text() if settings.jwt_public_key_file else None
        )
        self.jwks: dict[str | None, Any] = {}
        if settings.jwt_jwks_file:
            jwk_set = jwt.PyJWKSet.from_json(settings.jwt_jwks_file.read_text())
            self.jwks = {key.key_id: key for key in jwk_set.keys}

    def _key(self, token: str) -> tuple[Any, list[str]]:
        """The key and the one algorithm to check `token` with. The algorithm comes from
        our side (the secret is HS256; a JWKS key's own algorithm; the PEM key's type),
        and a token whose header names another one is refused."""
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm == "HS256" and self.secret:
            return self.secret, ["HS256"]
        if algorithm in ("RS256", "ES256"):
            if self.jwks:
                key = self.jwks.get(header.get("kid"))
                if key is None and len(self.jwks) == 1 and "kid" not in header:
                    key = next(iter(self.jwks.values()))
                if key is None:
                    raise jwt.InvalidTokenError("no key in the JWKS has this kid")
                if key.algorithm_name != algorithm:
                    raise jwt.InvalidTokenError(f"the key {key.key_id!r} is not for {algorithm}")
                return key.key, [algorithm]
            if self.public_key:
                return self.public_key, [algorithm]
        raise jwt.InvalidTokenError(f"algorithm {algorithm!r} is not accepted")

    def verify(self, token: str) -> JWTIdentity:
        """The identity of a valid token (an admin when its `scope` or `scp`, a
        space-separated string or a list, holds `JWT_ADMIN_SCOPE`). Raises
        `UnauthenticatedError` with the one message INVALID_JWT, also for an empty
        `sub`; the reason is an INFO line of the `graph.security.jwt_auth` logger (never the
        token)."""
        try:
            key, algorithms = self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub"], "verify_aud": bool(self.audience)},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            # TypeError/ValueError: a key PyJWT cannot use for the token (e.g. an RSA JWK
            # named by the kid of an ES256 token).
            raise _refused(f"{type(exc).__name__}: {exc}") from None
        subject = str(claims["sub"]).strip()
        if not subject:
            raise _refused("empty sub")
        scopes = {*_scopes(claims.get("scope")), *_scopes(claims.get("scp"))}
        name = str(claims.get("name") or subject)
        return JWTIdentity(subject, name, admin=self.admin_scope in scopes)


def _refused(reason: str) -> UnauthenticatedError:
    """Log why a JWT is refused (`reason`, cut to MAX_REASON_CHARS, control characters
    escaped) and return the error the client gets: INVALID_JWT, nothing more."""
    logger.info("JWT refused: %s", ascii(reason[:MAX_REASON_CHARS])[1:-1])
    return UnauthenticatedError(INVALID_JWT)


def _scopes(value: Any) -> list[str]:
    """OAuth scopes as sent: a space-separated string (`scope`, RFC 8693) or a list
    (`scp`, as Azure AD and Okta send it); anything else grants nothing."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
