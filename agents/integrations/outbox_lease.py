"""The outbox publisher's lease: the `outbox_lease` row (`db.messages.OutboxLease`)
names the one worker that sends the outbox and until when, on the database's clock.

- Taking: an UPDATE that succeeds only when the row is this holder's or has expired
  (one statement: PostgreSQL re-checks the condition on the row a concurrent taker
  just committed; SQLite has one writer), setting `expires_at` to the database's now
  plus `seconds`.
- Holding: the holder counts its lease from just before the UPDATE was sent, on its
  own monotonic clock (`remaining`), so it always believes it holds less than the
  database grants. It renews once a third has passed, and publishes only while more
  than a publish's timeout is left (`keep`): a holder that lost the database (a
  partition, a dead connection, a stalled renewal) stops sending before anyone else
  may start.
- Takeover: a worker that died without a word (power, a partition, no TCP reset)
  leaves a lease that runs out at most `seconds` after its last renewal; the standbys
  try every `STANDBY_POLL` seconds, so one publishes again within `seconds +
  STANDBY_POLL` (16 s by default). A worker that stops cleanly releases it at once.
- Limits: a process frozen between its check and its publish for longer than the
  margin (a stopped VM) could still send once after a takeover; the message id makes
  that repeat droppable (`Nats-Msg-Id`, `message_id`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

#: The lease row's name.
LEASE_NAME = "outbox"
#: Seconds a lease lasts from its renewal (at least 3 publish timeouts).
LEASE_SECONDS = 15.0
#: Seconds between a standby worker's tries to take the lease.
STANDBY_POLL = 1.0
#: Seconds of lease a publish must leave unused (besides its own timeout).
MARGIN = 1.0

_NOW = {
    "postgresql": "extract(epoch from clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def worker_id() -> str:
    """This process's holder id: host name, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class PublisherLease:
    """The outbox lease as `holder` sees it (see the module), `seconds` long."""

    engine: AsyncEngine
    seconds: float = LEASE_SECONDS
    holder: str = field(default_factory=worker_id)
    _valid_until: float = 0.0
    _taken_at: float = 0.0
    _row_made: bool = False

    @property
    def _now(self) -> str:
        return _NOW.get(self.engine.dialect.name, _NOW["postgresql"])

    def remaining(self) -> float:
        """Seconds this holder may still count on (0 when it holds nothing)."""
        return max(0.0, self._valid_until - time.monotonic())

    async def take(self) -> bool:
        """Take or renew the lease; True when this holder has it now. Raises what the
        database raises (the lease then counts as lost)."""
        started = time.monotonic()
        async with self.engine.begin() as connection:
            if not self._row_made:
                await connection.execute(
                    text(
                        "INSERT INTO outbox_lease (name, holder, expires_at) "
                        "VALUES (:name, NULL, 0) ON CONFLICT (name) DO NOTHING"
                    ),
                    {"name": LEASE_NAME},
                )
                self._row_made = True
            result = await connection.execute(
                text(
                    f"UPDATE outbox_lease SET holder = :holder, expires_at = {self._now} + :s "
                    f"WHERE name = :name AND (holder = :holder OR expires_at <= {self._now})"
                ),
                {"holder": self.holder, "s": self.seconds, "name": LEASE_NAME},
            )
        if getattr(result, "rowcount", 0) != 1:
            self._valid_until = 0.0
            return False
        if self._taken_at < started - self.seconds:
            logger.info("outbox: %s publishes (lease of %g s)", self.holder, self.seconds)
        self._valid_until, self._taken_at = started + self.seconds, started
        return True

    async def keep(self, need: float) -> bool:
        """Whether this holder may start a step that takes up to `need` seconds
        (renewing the lease once a third of it has passed); False when it is lost or
        cannot be renewed (the database is unreachable)."""
        if self.remaining() < self.seconds * 2 / 3:
            try:
                if not await self.take():
                    logger.warning("outbox: %s lost the lease; standing by", self.holder)
                    return False
            except Exception as exc:  # the lease granted before still holds
                logger.warning("outbox: lease not renewed (%s)", exc)
        return self.remaining() > need + MARGIN

    async def release(self) -> None:
        """Give the lease up (a standby takes it on its next try); never raises."""
        self._valid_until = 0.0
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE outbox_lease SET holder = NULL, expires_at = 0 "
                        "WHERE name = :name AND holder = :holder"
                    ),
                    {"name": LEASE_NAME, "holder": self.holder},
                )
        except Exception:
            logger.debug("outbox lease not released; it expires", exc_info=True)


__all__ = ["LEASE_SECONDS", "STANDBY_POLL", "PublisherLease", "worker_id"]
