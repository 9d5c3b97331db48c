"""How many WebSockets a principal may hold open in one API process: its cap
(`connection_cap`: the local principal's, or any other's) and the count of open ones
(`ConnectionLimiter`, also the gauge `postassist_websocket_connections`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from db.models import LOCAL_OWNER
from graph.security.principals import Principal
from graph.settings import Settings
from graph.telemetry.metrics import WEBSOCKET_CONNECTIONS


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
        WEBSOCKET_CONNECTIONS.inc()
        return True

    def release(self, principal: Principal) -> None:
        """Count one connection of `principal` less."""
        WEBSOCKET_CONNECTIONS.dec()
        self.open[principal.id] -= 1
        if self.open[principal.id] <= 0:
            del self.open[principal.id]
