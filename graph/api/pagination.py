"""Relay-style connections: page info, edges, and opaque cursors with keysets."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Generic, TypeVar

import strawberry

from graph.errors import UserInputError

NodeT = TypeVar("NodeT")


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def build(
        cls, nodes: list[tuple[str, NodeT]], *, has_next: bool, has_previous: bool, total: int
    ) -> Connection[NodeT]:
        """Build a page from `(cursor, node)` pairs."""
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in nodes],
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=has_previous,
                start_cursor=nodes[0][0] if nodes else None,
                end_cursor=nodes[-1][0] if nodes else None,
            ),
            total_count=total,
        )


#: The most items a connection returns per page; larger `first` values are capped.
MAX_PAGE_SIZE = 100


def page_size(first: int) -> int:
    """Validate `first` (>= 1) and cap it at `MAX_PAGE_SIZE`.

    Raises `UserInputError` (BAD_USER_INPUT) for values below 1.
    """
    if first < 1:
        raise UserInputError("first must be at least 1", field="first")
    return min(first, MAX_PAGE_SIZE)


def encode_cursor(*parts: str) -> str:
    """Return an opaque cursor for `parts` (url-safe base64 of `parts` joined by '|')."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode()


#: The largest `seq` a log cursor may carry: the column is a 32-bit INTEGER on PostgreSQL.
MAX_SEQ = 2**31 - 1


def decode_task_cursor(cursor: str) -> tuple[datetime, str]:
    """Decode a `tasks` cursor into its keyset `(created_at, id)`: `created_at` is an
    aware ISO-8601 time (cursors we make are UTC), returned in UTC. `UserInputError` for
    anything else: a time without a time zone, or one whose UTC instant falls outside
    the years 1-9999 that `datetime` (and the database column) can hold, such as
    `0001-01-01T00:00:00+14:00`."""
    created_at, task_id = decode_cursor(cursor, kind="task", arity=2)
    try:
        when = datetime.fromisoformat(created_at)
    except ValueError:
        raise _bad_cursor() from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise _bad_cursor()
    try:
        return when.astimezone(UTC), task_id
    except OverflowError:
        raise _bad_cursor() from None


def decode_log_cursor(cursor: str) -> int:
    """Decode an `agentLogs` cursor into the `seq` it points at (0..MAX_SEQ, ASCII
    digits); `UserInputError` for anything else."""
    (seq,) = decode_cursor(cursor, kind="log", arity=1)
    if not (seq.isascii() and seq.isdigit()) or len(seq) > 10 or int(seq) > MAX_SEQ:
        raise _bad_cursor()
    return int(seq)


def _bad_cursor() -> UserInputError:
    return UserInputError("after is not a valid cursor for this connection", field="after")


def decode_cursor(cursor: str, *, kind: str, arity: int) -> list[str]:
    """Decode a cursor made by `encode_cursor(kind, ...)` into its `arity` parts after
    `kind`. Raises `UserInputError` (field "after") for anything else."""
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if len(parts) != arity + 1 or parts[0] != kind or any("\x00" in p for p in parts):
        raise _bad_cursor()
    return parts[1:]
