"""`Inbox`: what a shared tail (`db.tails`) hands one follower, bounded, in order.

Imports: nothing of PostAssist's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: Rows an inbox holds before its follower is told to read the database instead (a
#: follower that does not keep up must not make the process hold a task's whole log).
INBOX_LIMIT = 1000


class FollowerLaggedError(RuntimeError):
    """A `taskUpdates` follower fell more than `INBOX_LIMIT` changes behind (it does
    not read what it is sent); it is ended rather than held in memory."""


class Inbox(Generic[T]):
    """What a tail hands one follower, in order: at most `limit` items; when more come
    before the follower takes them, the items are dropped and `get()` returns None once
    (the follower then reads the database itself)."""

    def __init__(self, limit: int = INBOX_LIMIT) -> None:
        self.limit = limit
        self._items: deque[T] = deque()
        self._overflowed = False
        self._nudged = False
        self.ended = False
        self._error: BaseException | None = None
        self._ready = asyncio.Event()

    def put(self, item: T) -> None:
        """Add `item` (never blocks)."""
        if self._overflowed:
            return
        if len(self._items) >= self.limit:
            self._items.clear()
            self._overflowed = True
        else:
            self._items.append(item)
        self._ready.set()

    def nudge(self) -> None:
        """Make `get()` return None once the items already in the inbox are taken (the
        follower should read the database then)."""
        self._nudged = True
        self._ready.set()

    def close(self) -> None:
        """Its tail ended: `ended` becomes True, and `get()` returns None once the items
        already in it are taken (the follower reads the database, then ends or follows a
        new tail: a retried task goes on after the terminal event its tail ended at)."""
        self.ended = True
        self.nudge()

    def fail(self, error: BaseException) -> None:
        """Make `get()` raise `error` once the items already in the inbox are taken (the
        tail stopped on an error it could not retry)."""
        self._error = error
        self._ready.set()

    async def get(self) -> T | None:
        """The next item; None once after an overflow (at once: the items were dropped)
        or after a `nudge` (when no item is left); raises the error given to `fail`
        when no item is left."""
        while not (self._items or self._overflowed or self._nudged or self._error):
            self._ready.clear()
            await self._ready.wait()
        if self._overflowed:
            self._overflowed = False
            return None
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            raise self._error
        self._nudged = False
        return None


__all__ = ["INBOX_LIMIT", "FollowerLaggedError", "Inbox"]
