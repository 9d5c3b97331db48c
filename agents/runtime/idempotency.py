"""Idempotent submissions: a principal's idempotency key names the task(s) its first
submission created, so a retried request never starts a second run.

A `Claim` is one submission with a key: the principal (`owner`), the key, the
submission's `fingerprint` and how long the key holds (`IDEMPOTENCY_TTL_HOURS`).

- Before anything is stored, `Claim.replay` looks the key up: a live row with the same
  fingerprint answers with its tasks as they are now (PENDING, RUNNING, COMPLETED ...),
  nothing is enqueued; a live row with another fingerprint is
  `IdempotencyConflictError`; no row, or an expired one, lets the submission through.
- The submission's transaction (`TaskService._create`, `create_batch`) calls
  `Claim.record` after writing its task rows and workflows and before its commit: the
  key's row is written in the same transaction, so a crash never leaves a key without
  its tasks or tasks without their key. Two concurrent submissions of one key both pass
  `replay`; the primary key (owner, key) decides: the loser's insert fails (on
  PostgreSQL it waits for the winner's commit; SQLite takes writers one at a time), its
  whole transaction is rolled back (its task rows and DBOS workflows with it), and it
  raises `Replayed` with the winner's tasks, or `IdempotencyConflictError` if the
  winner's fingerprint differs.
- Keys are per principal: another principal's same key is another row.
- An expired row (past `expires_at`) counts as absent: `record` deletes it in its
  transaction before the insert, and `sweep` deletes every expired row (called after a
  keyed submission, best effort), so the table holds about a TTL's worth of keys.

Imports: `db` only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy.exc
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import SessionFactory
from db.models import IDEMPOTENCY_KEY_MAX, IdempotencyKey, PostRequest, Task, utcnow

logger = logging.getLogger(__name__)

#: `IDEMPOTENCY_TTL_HOURS` when unset: a day, as Stripe keeps its keys.
DEFAULT_TTL_HOURS = 24.0


class IdempotencyKeyError(ValueError):
    """The key is empty, longer than `IDEMPOTENCY_KEY_MAX` characters or holds a
    character that is not printable (a control character, a line break)."""


class IdempotencyConflictError(Exception):
    """The key was used, within its TTL, for another submission (another input, or the
    other operation: `generatePost` against `generatePosts`)."""


class Replayed(Exception):
    """Raised out of the submission's transaction (rolled back) when a concurrent
    submission of the same key and fingerprint committed first: `tasks` are the ones it
    created, in input order."""

    def __init__(self, tasks: list[Task]) -> None:
        super().__init__(f"replayed {len(tasks)} task(s)")
        self.tasks = tasks


def check_key(key: str) -> str:
    """`key` when it is 1 to `IDEMPOTENCY_KEY_MAX` printable characters (kept as sent:
    nothing is stripped or folded; a uuid4 is a good key); else `IdempotencyKeyError`."""
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise IdempotencyKeyError(
            f"idempotencyKey: 1 to {IDEMPOTENCY_KEY_MAX} characters, not {len(key)}"
        )
    if not key.isprintable():
        raise IdempotencyKeyError(
            "idempotencyKey: printable characters only (no control characters or line breaks)"
        )
    return key


def fingerprint(operation: str, requests: Sequence[PostRequest]) -> str:
    """The SHA-256 (64 hex characters) of the canonical JSON of `operation` (the
    mutation's name) and the validated `requests` in order: keys sorted, no spaces, UTF-8.
    Two submissions that validate to the same requests (one with a title's trailing
    space, one without; one giving a default, one leaving it out) have one fingerprint."""
    body = {
        "operation": operation,
        "requests": [request.model_dump(mode="json") for request in requests],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """One submission of principal `owner` with idempotency `key` (checked with
    `check_key`), whose validated requests have `fingerprint`; its key holds for `ttl`."""

    owner: str
    key: str
    fingerprint: str
    ttl: timedelta

    async def replay(self, session_factory: SessionFactory) -> list[Task] | None:
        """The tasks the key's first submission created, as they are now, in input
        order; None when the key is unused or expired. Raises `IdempotencyConflictError`
        when it was used for another submission."""
        async with session_factory() as session:
            return await self._tasks_of_row(session)

    async def record(
        self, session: AsyncSession, task_ids: Sequence[str], *, batch_id: str | None = None
    ) -> None:
        """Write the key's row naming `task_ids` (and `batch_id`) in `session`'s
        transaction (not committed: the caller's commit stores it with its tasks). If the
        key is taken meanwhile, roll the transaction back and raise `Replayed` with the
        winner's tasks, or `IdempotencyConflictError`."""
        now = utcnow()
        mine = (col(IdempotencyKey.owner) == self.owner) & (col(IdempotencyKey.key) == self.key)
        await session.exec(
            delete(IdempotencyKey).where(mine, col(IdempotencyKey.expires_at) <= now)
        )
        session.add(
            IdempotencyKey(
                owner=self.owner, key=self.key, fingerprint=self.fingerprint,
                task_ids=list(task_ids), batch_id=batch_id,
                created_at=now, expires_at=now + self.ttl,
            )
        )  # fmt: skip
        try:
            await session.flush()
        except sqlalchemy.exc.IntegrityError:
            await session.rollback()
            tasks = await self._tasks_of_row(session)
            if tasks is None:  # the winner's row expired in between: a TTL of seconds
                raise IdempotencyConflictError(
                    "idempotencyKey: a concurrent submission with this key was still being "
                    "stored; retry"
                ) from None
            raise Replayed(tasks) from None

    async def _tasks_of_row(self, session: AsyncSession) -> list[Task] | None:
        query = select(IdempotencyKey).where(
            col(IdempotencyKey.owner) == self.owner, col(IdempotencyKey.key) == self.key
        )
        row = (await session.exec(query.execution_options(populate_existing=True))).first()
        if row is None or row.expires_at <= utcnow():
            return None
        if row.fingerprint != self.fingerprint:
            raise IdempotencyConflictError(
                "idempotencyKey: this key was used for a different submission (another "
                f"input or operation) at {row.created_at.isoformat()}; send a new key for "
                "a new submission"
            )
        tasks = []
        for task_id in row.task_ids:
            task = await session.get(Task, task_id, populate_existing=True)
            if task is not None:  # tasks are never deleted; a row outlives none of them
                tasks.append(task)
        return tasks


async def sweep(session_factory: SessionFactory) -> int:
    """Delete every expired key (the `expires_at` index finds them); return how many.
    Best effort: a database error (a lock held by a concurrent sweep) is logged and 0
    returned, since a later sweep or the key's own next use deletes the rows as well."""
    try:
        async with session_factory() as session:
            query = delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= utcnow())
            result = await session.exec(query)
            await session.commit()
            return int(result.rowcount or 0)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        logger.info("idempotency key sweep skipped: %s", type(exc).__name__)
        return 0
