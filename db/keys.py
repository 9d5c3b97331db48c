"""API keys: create (the token is returned once), find by token, list, revoke.

A token is `pa_<id>_<secret>`: `id` is 8 hex characters (the key's public id, for
`postassist keys revoke` and logs), `secret` 32 random bytes in URL-safe base64 (43
characters, from `secrets.token_urlsafe`). The database holds only the token's SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import ApiKey, utcnow

#: Every API key token starts with this (so a leaked one is easy to find with a
#: secret scanner, and a JWT is never mistaken for a key).
TOKEN_PREFIX = "pa_"
#: The whole shape of a token: anything else is refused without a database read.
TOKEN_SHAPE = re.compile(r"pa_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def hash_token(token: str) -> str:
    """The SHA-256 of `token` as 64 lowercase hex characters: what `secret_hash` holds."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_key(
    *, session: AsyncSession, name: str, admin: bool = False
) -> tuple[ApiKey, str]:
    """Store a new key named `name` and commit; return it and its token (the only time
    the token exists outside the caller's hands). Raises `ValueError` for an empty name."""
    if not name.strip():
        raise ValueError("a key needs a name")
    key_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(id=key_id, name=name.strip(), secret_hash=hash_token(token), admin=admin)
    session.add(key)
    await session.commit()
    await session.refresh(key)
    return key, token


async def find_key(*, session: AsyncSession, token: str) -> ApiKey | None:
    """The unrevoked key whose token is `token`, or None."""
    query = select(ApiKey).where(
        ApiKey.secret_hash == hash_token(token), col(ApiKey.revoked_at).is_(None)
    )
    return (await session.exec(query)).first()


async def list_keys(*, session: AsyncSession) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list((await session.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all())


async def count_active_keys(*, session: AsyncSession) -> int:
    """How many keys are not revoked."""
    query = select(func.count()).select_from(ApiKey).where(col(ApiKey.revoked_at).is_(None))
    return int((await session.exec(query)).one())


async def revoke_key(*, session: AsyncSession, key_id: str) -> ApiKey | None:
    """Revoke the key `key_id` and commit; return it (None for an unknown id). Revoking
    a revoked key keeps its first `revoked_at`."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.commit()
        await session.refresh(key)
    return key
