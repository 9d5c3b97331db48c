"""The one place that touches broadcaster's internals.

`db.bus` implements its own Redis backend and `Bus.subscribe`, so it needs what
broadcaster 0.3 does not export or expose: the backend base class (`_backends.base`),
the `Subscriber` a subscription yields (`_base`), and a `Broadcast`'s backend and
subscriber queues (`BroadcastInternals`). They are reached here only, after a check of
the installed version, so an upgrade that moves them fails at import with a message
instead of deep in a subscription.
"""

from __future__ import annotations

from db.compat import require_verified

#: The broadcaster releases whose private layout this module was written against (PEP 440).
SUPPORTED = "==0.3.*"

require_verified(
    "broadcaster",
    SUPPORTED,
    seam="db/broadcaster_compat.py",
    check="the private modules broadcaster._backends.base.BroadcastBackend, "
    "broadcaster._base.Subscriber and Broadcast._backend and _subscribers (what "
    "Broadcast._listener reads)",
)

import asyncio  # noqa: E402

from broadcaster import Broadcast, Event  # noqa: E402

# Why private: a backend of our own subclasses the base, and `Bus.subscribe` yields a
# `Subscriber`, as broadcaster's own `subscribe` does. Public replacement: the same
# names exported from `broadcaster` (0.3.1 exports `BroadcastBackend`, from its private
# module, but not `Subscriber`).
from broadcaster._backends.base import BroadcastBackend  # noqa: E402
from broadcaster._base import Subscriber  # noqa: E402


class BroadcastInternals(Broadcast):
    """`Broadcast` with its backend and its subscriber queues as properties, for a
    subclass that replaces `subscribe` (`db.bus.Bus`)."""

    @property
    def backend(self) -> BroadcastBackend:
        """The backend (`Broadcast._backend`). Why private: a subscription must
        SUBSCRIBE and UNSUBSCRIBE through it, and `Bus` reads the state of its own Redis
        backend. Public replacement: none in 0.3."""
        return self._backend

    @property
    def subscribers(self) -> dict[str, set[asyncio.Queue[Event | None]]]:
        """The queues of each channel's subscribers (`Broadcast._subscribers`), which
        `Broadcast._listener` puts every received event in: a `subscribe` of our own
        must add and remove its queue here, in this shape. Public replacement: a
        `subscribe` without the race `Bus.subscribe` fixes (two first subscribers of a
        channel), when broadcaster has one."""
        return self._subscribers


__all__ = ["BroadcastBackend", "BroadcastInternals", "Subscriber"]
