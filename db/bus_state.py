"""The bus's state, shared by the `Bus` (`db.bus`) and its Redis backend
(`db.redis_bus`): `BusState` (up or down, since when, why), `BusDownError` (a publish
while down) and `now`, the UTC time a change is stamped with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


class BusDownError(ConnectionError):
    """`publish()` while the bus is down (or the publish itself lost the connection)."""


@dataclass(frozen=True)
class BusState:
    """Whether the bus delivers messages. `since` is the UTC time of the last change
    (None for a `Broadcast` that does not report a state); `error` names why it is down
    (an exception type, never its text: probes show it), None when up."""

    up: bool
    since: datetime | None = None
    error: str | None = None

    def describe(self) -> str:
        """`up since <time>` or `down since <time> (<error>)`, for probes and logs."""
        when = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"up{when}" if self.up else f"down{when} ({self.error or 'unknown'})"


def now() -> datetime:
    """The current time in UTC, as `BusState.since` holds it."""
    return datetime.now(UTC)
