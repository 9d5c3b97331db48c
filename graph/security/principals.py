"""Who a caller is (`Principal`; `LOCAL_PRINCIPAL` in local and disabled mode) and the
credentials it names itself with: `Authorization: Bearer <token>` (`bearer_token`) over
HTTP or in a WebSocket `connection_init` payload (`authorization_from_params`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from db.models import LOCAL_OWNER
from graph.errors import UnauthenticatedError


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
