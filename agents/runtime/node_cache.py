"""LangGraph's node cache on the app's database (`DatabaseCache`, a
`langgraph.cache.base.BaseCache`), with one computation per key at a time in a process.

A compiled graph given `cache=DatabaseCache(...)` looks up each node that has a
`CachePolicy` before it runs it (`BaseCache.aget`): a hit skips the node and applies the
stored writes; after a miss, the node's writes are stored (`aset`) with the policy's TTL.
Only the PaperResearcher's notes node has a policy (`agents.teams.researcher`).

Single flight: the tasks of a batch run at once (worker concurrency 3), so all of them
would miss an empty cache together. The first run that misses a key takes a *lease* on
it here and computes; a run of this process that misses the same key while the lease is
held waits (in `aget`) until the entry is stored, then gets it as a hit. The lease ends
when its entry is stored, when the asyncio task that took it ends without storing one
(the node failed or was cancelled: the next waiter takes the lease and computes), or
after `lease_timeout` seconds (a waiter then computes too). Across processes there is no
lease: two workers that miss the same key at once each compute it, and the entry is
written twice (the later write wins; both are the notes of the same request on the same
model), so a batch spread over several workers may make one research call per worker.

A cache is an optimisation, never the truth: a database error while reading is a miss
and while writing is logged and dropped (the run goes on; a waiter then computes).

Imports: `db` and LangGraph only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy.exc
from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import delete, or_, tuple_
from sqlmodel import col, select

from db.engine import SessionFactory
from db.models import NodeCacheEntry, utcnow

logger = logging.getLogger(__name__)

#: Seconds a run waits for another run of this process computing the same key before
#: it computes the entry itself (research on the bundled model takes about 10 s; a
#: remote model's timeout and retries can stretch one call to minutes).
LEASE_TIMEOUT = 300.0


@dataclass(eq=False)
class _Lease:
    """A key being computed by the run in `owner` (an asyncio task); `ended` is set when
    the entry is stored or the owner ends."""

    owner: asyncio.Task[Any] | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def _namespace(ns: Namespace) -> str:
    return json.dumps(list(ns))


class DatabaseCache(BaseCache[Any]):
    """LangGraph's node cache in the `node_cache` table of the database behind
    `session_factory` (SQLite or PostgreSQL; migration 0007), for async graphs
    (`ainvoke`/`astream`): the sync `get`/`set`/`clear` raise `NotImplementedError`.
    See the module docstring for the leases (`lease_timeout`, seconds)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        lease_timeout: float = LEASE_TIMEOUT,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.session_factory = session_factory
        self.lease_timeout = lease_timeout
        self._leases: dict[FullKey, _Lease] = {}

    # --- reads ------------------------------------------------------------------------

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """The stored, unexpired values of `keys`. A key missing here and being computed
        by another run of this process is waited for (at most `lease_timeout` s); a key
        missing and free is leased to the calling run, which is expected to compute it."""
        found = await self._read(keys)
        for key in keys:
            while key not in found:
                lease = self._leases.get(key)
                me = asyncio.current_task()
                if lease is None or lease.ended.is_set():
                    self._lease(key, me)
                    break  # a miss: this run computes it
                if lease.owner is me:
                    break
                try:
                    async with asyncio.timeout(self.lease_timeout):
                        await lease.ended.wait()
                except TimeoutError:
                    logger.warning("node cache: gave up waiting for %s; computing it", key)
                    self._lease(key, me)
                    break
                found.update(await self._read([key]))
        return found

    def _lease(self, key: FullKey, owner: asyncio.Task[Any] | None) -> None:
        lease = self._leases[key] = _Lease(owner)
        if owner is not None:
            owner.add_done_callback(lambda _: self._release(key, lease))

    def _release(self, key: FullKey, lease: _Lease) -> None:
        lease.ended.set()
        if self._leases.get(key) is lease:
            del self._leases[key]

    async def _read(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        if not keys:
            return {}
        wanted = {(_namespace(ns), key): (ns, key) for ns, key in keys}
        now = utcnow()
        try:
            async with self.session_factory() as session:
                pair = tuple_(col(NodeCacheEntry.namespace), col(NodeCacheEntry.key))
                query = select(NodeCacheEntry).where(pair.in_(list(wanted)))
                rows = list((await session.exec(query)).all())
                values: dict[FullKey, Any] = {}
                expired = []
                for row in rows:
                    if row.expires_at is not None and row.expires_at <= now:
                        expired.append((row.namespace, row.key))
                        continue
                    values[wanted[row.namespace, row.key]] = self.serde.loads_typed(
                        (row.encoding, row.value)
                    )
                if expired:
                    await session.exec(delete(NodeCacheEntry).where(_pairs(expired)))
                    await session.commit()
                return values
        except sqlalchemy.exc.SQLAlchemyError as exc:
            logger.warning("node cache read failed, a miss: %s", type(exc).__name__)
            return {}

    # --- writes -----------------------------------------------------------------------

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Store each value with its TTL (seconds; None: no expiry), replacing an entry
        under the same key, and drop expired entries; then end the keys' leases (their
        waiters read the entries). A database error is logged, not raised."""
        now = utcnow()
        rows = []
        for (ns, key), (value, ttl) in pairs.items():
            encoding, raw = self.serde.dumps_typed(value)
            expires = now + timedelta(seconds=ttl) if ttl is not None else None
            rows.append(
                NodeCacheEntry(
                    namespace=_namespace(ns),
                    key=key,
                    encoding=encoding,
                    value=raw,
                    created_at=now,
                    expires_at=expires,
                )
            )
        try:
            async with self.session_factory() as session:
                stale = col(NodeCacheEntry.expires_at) <= now
                await session.exec(
                    delete(NodeCacheEntry).where(
                        or_(_pairs([(r.namespace, r.key) for r in rows]), stale)
                    )
                )
                session.add_all(rows)
                await session.commit()
        except sqlalchemy.exc.IntegrityError:
            pass  # another process stored the same keys meanwhile: theirs stays
        except sqlalchemy.exc.SQLAlchemyError as exc:
            logger.warning("node cache write failed, not cached: %s", type(exc).__name__)
        finally:
            for key in pairs:
                if (lease := self._leases.get(key)) is not None:
                    self._release(key, lease)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete the entries of `namespaces` (every entry when None)."""
        query = delete(NodeCacheEntry)
        if namespaces is not None:
            query = query.where(
                col(NodeCacheEntry.namespace).in_([_namespace(ns) for ns in namespaces])
            )
        async with self.session_factory() as session:
            await session.exec(query)
            await session.commit()

    # --- the sync API: not used by async graphs ---------------------------------------

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Not supported: the cache is for async graphs (`aget`)."""
        raise NotImplementedError("DatabaseCache serves async graphs only: use aget")

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Not supported: the cache is for async graphs (`aset`)."""
        raise NotImplementedError("DatabaseCache serves async graphs only: use aset")

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Not supported: the cache is for async graphs (`aclear`)."""
        raise NotImplementedError("DatabaseCache serves async graphs only: use aclear")


def _pairs(pairs: list[tuple[str, str]]) -> Any:
    """WHERE (namespace, key) IN `pairs`."""
    return tuple_(col(NodeCacheEntry.namespace), col(NodeCacheEntry.key)).in_(pairs)
