"""The post as it is written: ephemeral draft deltas on the bus, never stored.

Write path (`DraftPublisher`): the writer hands over text as the model generates it;
`Coalescer` gathers it into chunks (one every `interval` seconds, or sooner once
`max_chars` are waiting) and each chunk goes on the broadcast channel `draft:<task id>`
as a JSON message `{"task_id", "draft", "index", "text", "replace", "progress",
"attempt", "at"}`:

- `draft`: which draft of the task (0 for the first, +1 per revision); `index`: 0, 1, 2
  ... within that draft, in publish order;
- `text`: the new characters; with `replace` true they start the draft afresh (the
  reader drops what it has: the first chunk of a draft, a sentence the checks rejected,
  the final assembly of the post). So `text` of the chunks since the last `replace`,
  joined, is the draft as the writer shows it;
- `progress`: the task's progress (0..1) at publish; `attempt`: the run that wrote it;
  `at`: publish time, seconds since the epoch (UTC).

Nothing is written to the database: no `AgentLog` row, no `seq`. A chunk published while
the bus is down, or one a subscriber misses, is lost; the stored post (the task's
`content`, written with the LinkedInCreator's AGENT_FINISHED) is the truth.

Read path (`subscribe_drafts`, `follow_with_drafts`): subscribe to `draft:<id>`, then
follow the stored events (`EventLog.follow`), yielding both as they come, and stop with
the terminal event.

The memory bus delivers within a process; Redis (or PostgreSQL) carries the chunks from
a worker to the API replicas as it carries the event notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from broadcaster import Broadcast

from db.bus import WAKE_UP, bus_state
from db.bus_state import BusDownError
from db.models import AgentLog

logger = logging.getLogger(__name__)

#: Seconds a chunk waits for more text before it is published.
DRAFT_INTERVAL = 0.05
#: Characters that publish a chunk at once, and the most one message carries (a longer
#: `replace` goes as several messages: the first replaces, the others append), so a
#: message stays far below PostgreSQL NOTIFY's 8000 bytes.
DRAFT_MAX_CHARS = 1000


def draft_channel(task_id: str) -> str:
    """The broadcast channel of `task_id`'s draft deltas: `draft:<task id>`."""
    return f"draft:{task_id}"


@dataclass(frozen=True)
class Chunk:
    """Text to publish: `replace` true when it starts the draft afresh."""

    text: str
    replace: bool


class Coalescer:
    """Gathers text into chunks: `add` returns a chunk to publish now once `max_chars`
    are waiting, otherwise None (the caller publishes `take()` when `due(now)`, `interval`
    seconds after the first waiting text). A `replace` drops the text waiting before it.
    Times are seconds on any monotonic clock."""

    def __init__(self, *, interval: float = DRAFT_INTERVAL, max_chars: int = DRAFT_MAX_CHARS):
        self.interval, self.max_chars = interval, max_chars
        self._text, self._replace, self._since = "", False, None

    @property
    def waiting(self) -> bool:
        """Whether a chunk waits to be taken."""
        return self._since is not None

    def add(self, text: str, now: float, *, replace: bool = False) -> Chunk | None:
        """Add `text` (with `replace`, instead of what waits); the chunk to publish now,
        if `max_chars` are waiting."""
        if replace:
            self._text, self._replace = text, True
        else:
            self._text += text
        if self._since is None:
            self._since = now
        return self.take() if len(self._text) >= self.max_chars else None

    def due(self, now: float) -> bool:
        """Whether the waiting chunk has waited `interval` seconds."""
        return self._since is not None and now - self._since >= self.interval

    def take(self) -> Chunk | None:
        """The waiting chunk (None: nothing waits), which no longer waits."""
        if self._since is None:
            return None
        chunk = Chunk(self._text, self._replace)
        self._text, self._replace, self._since = "", False, None
        return chunk


class DraftPublisher:
    """Publishes one attempt's draft text of task `task_id` on `draft:<id>` (see the
    module). `write(text, draft=n)` appends, `write(text, draft=n, replace=True)` starts
    draft `n` afresh; `flush()` publishes what waits. `progress()` is the task's progress
    to stamp on each chunk. Never raises for the bus: a failed publish is logged and lost.

    `published` and `seconds` count the messages sent and the seconds spent sending them
    (the cost of streaming, for `benchmarks.drafts`)."""

    def __init__(
        self,
        broadcast: Broadcast,
        task_id: str,
        *,
        attempt: int = 1,
        progress: Callable[[], float] = lambda: 0.0,
        interval: float = DRAFT_INTERVAL,
        max_chars: int = DRAFT_MAX_CHARS,
    ) -> None:
        self.broadcast, self.task_id, self.attempt = broadcast, task_id, attempt
        self.progress = progress
        self.channel = draft_channel(task_id)
        self.coalescer = Coalescer(interval=interval, max_chars=max_chars)
        self.draft, self.index = 0, 0
        self.published, self.seconds = 0, 0.0
        self._timer: asyncio.Task[None] | None = None
        # One chunk on the bus at a time, in the order they were taken: the timer's and
        # a full chunk's sends would otherwise interleave, and a Redis pool may deliver
        # two concurrent PUBLISHes in either order (a stale append after a replace).
        self._sending = asyncio.Lock()

    async def write(self, text: str, *, draft: int, replace: bool = False) -> None:
        """Add `text` to draft `draft` (a new draft number flushes the last one's text
        and counts `index` from 0 again)."""
        if draft != self.draft:
            await self.flush()
            self.draft, self.index = draft, 0
        if not text and not replace:
            return
        chunk = self.coalescer.add(text, time.monotonic(), replace=replace)
        if chunk is not None:
            self._cancel_timer()
            await self._send(chunk)
        elif self._timer is None:
            self._timer = asyncio.create_task(self._later(), name=f"drafts-{self.task_id}")

    async def _later(self) -> None:
        await asyncio.sleep(self.coalescer.interval)
        self._timer = None
        if (chunk := self.coalescer.take()) is not None:
            await self._send(chunk)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def flush(self) -> None:
        """Publish the text that waits, now."""
        self._cancel_timer()
        if (chunk := self.coalescer.take()) is not None:
            await self._send(chunk)

    async def _send(self, chunk: Chunk) -> None:
        text, replace = chunk.text, chunk.replace
        limit = self.coalescer.max_chars
        pieces = [text[i : i + limit] for i in range(0, len(text), limit)] or [""]
        async with self._sending:
            for piece in pieces:
                await self._publish(piece, replace)
                replace = False

    async def _publish(self, text: str, replace: bool) -> None:
        message = {
            "task_id": self.task_id,
            "draft": self.draft,
            "index": self.index,
            "text": text,
            "replace": replace,
            "progress": self.progress(),
            "attempt": self.attempt,
            "at": time.time(),
        }
        self.index += 1
        if not bus_state(self.broadcast).up:
            return
        started = time.perf_counter()
        try:
            await self.broadcast.publish(channel=self.channel, message=json.dumps(message))
        except BusDownError:
            pass  # the bus logs its outages itself; the chunk is lost
        except Exception:
            logger.exception("could not publish a draft chunk of task %s", self.task_id)
        finally:
            self.published += 1
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class DraftDelta:
    """One draft chunk as a subscriber receives it (the fields of the module's message;
    `at`: seconds since the epoch, UTC)."""

    task_id: str
    draft: int
    index: int
    text: str
    replace: bool
    progress: float
    attempt: int
    at: float

    @classmethod
    def parse(cls, message: str) -> DraftDelta | None:
        """The delta in a bus message; None for a wake-up or anything malformed."""
        if message == WAKE_UP:
            return None
        try:
            data = json.loads(message)
            return cls(
                task_id=str(data["task_id"]),
                draft=int(data["draft"]),
                index=int(data["index"]),
                text=str(data["text"]),
                replace=bool(data.get("replace", False)),
                progress=float(data.get("progress", 0.0)),
                attempt=int(data.get("attempt", 1)),
                at=float(data.get("at", time.time())),
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed draft chunk: %.80s", message)
            return None


@contextlib.asynccontextmanager
async def subscribe_drafts(broadcast: Broadcast, task_id: str) -> AsyncIterator[Any]:
    """The draft deltas of `task_id` published from now on, for the block's lifetime:
    yields an async iterator of `DraftDelta` (it ends only with the subscription)."""
    async with broadcast.subscribe(channel=draft_channel(task_id)) as subscriber:

        async def deltas() -> AsyncIterator[DraftDelta]:
            async for event in subscriber:  # ends when the subscription does
                if event is not None and (delta := DraftDelta.parse(event.message)) is not None:
                    yield delta

        yield deltas()


#: What `follow_with_drafts` yields: a stored event or a draft delta.
Followed = AgentLog | DraftDelta


async def follow_with_drafts(event_log: Any, task_id: str, *, after_seq: int = 0) -> Any:
    """`event_log.follow(task_id, after_seq=...)` (an `EventLog`) with the task's draft
    deltas mixed in as they arrive (subscribed to before the stored events are read, so
    no delta published meanwhile is missed); ends with the terminal event. Raises what
    `follow` raises."""
    async with subscribe_drafts(event_log.broadcast, task_id) as deltas:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def pump(kind: str, source: AsyncIterator[Any]) -> None:
            try:
                async for item in source:
                    await queue.put((kind, item))
                if kind == "event":
                    await queue.put(("end", None))
            except Exception as exc:
                if kind == "event":
                    await queue.put(("error", exc))
                else:  # the drafts are a bonus: the stored events go on without them
                    logger.exception("draft deltas of task %s stopped", task_id)

        tasks = [
            asyncio.create_task(pump("event", event_log.follow(task_id, after_seq=after_seq))),
            asyncio.create_task(pump("delta", deltas)),
        ]
        try:
            while True:
                kind, item = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


__all__ = [
    "DRAFT_INTERVAL",
    "DRAFT_MAX_CHARS",
    "Chunk",
    "Coalescer",
    "DraftDelta",
    "DraftPublisher",
    "draft_channel",
    "follow_with_drafts",
    "subscribe_drafts",
]
