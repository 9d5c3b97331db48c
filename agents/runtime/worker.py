"""A worker: the process-wide DBOS instance that pulls tasks from the queue and runs them,
its LangGraph checkpointer, and the heartbeats that let workers take over a dead one's
tasks (the open-source DBOS recovers only its own executor's workflows)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from dbos import DBOS
from langgraph.checkpoint.base import BaseCheckpointSaver

from agents.llm.prices import PriceTable
from agents.runtime import dbos_compat
from agents.runtime.control import expire_reviews
from agents.runtime.execution import QUEUE_NAME, Executor, ModelFactory, install
from agents.runtime.node_cache import DatabaseCache
from agents.teams.sources import SourcesConfig
from db import VERSION, workers
from db.engine import is_sqlite, plain_url
from db.event_log import QUEUE_CHANNEL, EventLog

logger = logging.getLogger(__name__)


#: PostgreSQL advisory lock key that serialises the checkpointer's table set-up.
SETUP_LOCK = 0x706F73746173  # "postas"
#: Seconds between tries of the set-up lock while another worker holds it.
SETUP_LOCK_POLL = 0.1


def default_worker_id() -> str:
    """`<host name>-<process id>`: unique per process, readable in logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker runs.

    - `worker_id`: the DBOS executor id; a worker restarted with the same id resumes
      its own tasks at once.
    - `worker_concurrency`: tasks this worker runs at once; `global_concurrency`: tasks
      all workers run at once (both enforced by the DBOS queue).
    - `dead_after`: seconds without a heartbeat after which another worker takes the
      worker's tasks over; `heartbeat`: seconds between heartbeats (well below it).
    - `queue_poll`: seconds between DBOS's queue polls (the pick-up latency of a task
      whose announcement on the bus was lost; an announced one starts at once).
    - `shutdown_grace`: seconds running tasks get to finish on shutdown before they are
      stopped and left to resume elsewhere.
    - `sources`: where research may fetch real sources (the default fetches nothing).
    - `review_timeout`: seconds a task may await review before it fails with
      REVIEW_TIMEOUT (None: it waits for ever; `REVIEW_TIMEOUT_HOURS`).
    - `prices`: what the model's calls cost (`Executor.prices`; None: unknown).
    """

    database_url: str
    worker_id: str
    worker_concurrency: int = 3
    global_concurrency: int = 3
    dead_after: float = 30.0
    heartbeat: float = 2.0
    queue_poll: float = 0.1
    shutdown_grace: float = 10.0
    max_revisions: int = 2
    timeout: float = 900.0
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    review_timeout: float | None = None
    prices: PriceTable | None = None


@contextlib.asynccontextmanager
async def open_checkpointer(
    database_url: str, *, max_connections: int = 4
) -> AsyncIterator[BaseCheckpointSaver]:
    """The LangGraph checkpointer for `database_url`, its tables set up once here.

    SQLite: a separate file beside the database (`<name>.checkpoints.db`, WAL), so the
    checkpointer's writer does not wait on the event log's. PostgreSQL: the same
    database, through a psycopg pool of at most `max_connections` (a worker passes the
    tasks it runs at once, so no run waits for another's checkpoint write).
    """
    url = plain_url(database_url)
    if is_sqlite(database_url):
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = url.removeprefix("sqlite:///")
        stem, dot, ext = path.rpartition(".")
        async with AsyncSqliteSaver.from_conn_string(
            f"{stem}.checkpoints.{ext}" if dot else f"{path}.checkpoints"
        ) as saver:
            await saver.conn.execute("PRAGMA journal_mode=WAL")
            await saver.setup()
            yield saver
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    pool = AsyncConnectionPool(
        url, min_size=1, max_size=max(4, max_connections), kwargs=kwargs, open=False
    )
    async with pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        async with pool.connection() as lock:
            # setup() races with itself on CREATE TABLE: one worker at a time. Waiting in
            # pg_advisory_lock would deadlock, undetected: the holder's CREATE INDEX
            # CONCURRENTLY waits for every running statement, the waiter's included. So
            # the waiter polls, with no statement running between tries.
            while not await _try_lock(lock, SETUP_LOCK):  # noqa: ASYNC110 (a lock in another process)
                await asyncio.sleep(SETUP_LOCK_POLL)
            try:
                await saver.setup()
            finally:
                await lock.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        yield saver


async def _try_lock(connection: Any, key: int) -> bool:
    """Take the session-level advisory lock `key` on `connection` if it is free (True),
    without waiting for it (False)."""
    cursor = await connection.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,))
    row = await cursor.fetchone()
    return bool(row["locked"])


class WorkerPlugin(Protocol):
    """More work a worker does beside tasks (webhook deliveries, the broker outbox).

    `prepare()` runs before DBOS launches: install what the plugin's workflows need,
    since DBOS may start recovered workflows at launch. `running()` is entered after
    launch and the task queue, for the worker's lifetime (register queues, start
    loops), and exited, in reverse order, before the tasks drain."""

    def prepare(self) -> None: ...

    def running(self) -> AbstractAsyncContextManager[None]: ...


@contextlib.asynccontextmanager
async def run_worker(
    config: WorkerConfig,
    *,
    event_log: EventLog,
    model_factory: ModelFactory,
    plugins: Sequence[WorkerPlugin] = (),
) -> AsyncIterator[Executor]:
    """Run a worker for the context's lifetime: launch DBOS on this event loop, take
    tasks from the queue, beat the heartbeat and take over dead workers' tasks, and run
    `plugins`. On exit: stop the plugins and taking work, give running tasks
    `shutdown_grace` seconds, then stop them without an event (they resume elsewhere)
    and retire the heartbeat."""
    checkpoints = open_checkpointer(config.database_url, max_connections=config.worker_concurrency)
    async with checkpoints as checkpointer:
        executor = Executor(
            event_log=event_log,
            model_factory=model_factory,
            checkpointer=checkpointer,
            worker_id=config.worker_id,
            max_revisions=config.max_revisions,
            timeout=config.timeout,
            sources=config.sources,
            prices=config.prices,
            cache=DatabaseCache(event_log.session_factory),
        )
        install(executor)
        for plugin in plugins:
            plugin.prepare()
        _launch(config)
        try:
            await DBOS.register_queue_async(
                QUEUE_NAME,
                worker_concurrency=config.worker_concurrency,
                global_concurrency=config.global_concurrency,
                polling_interval_sec=config.queue_poll,
                on_conflict="always_update",
            )
            heart = asyncio.create_task(_heartbeats(config, event_log), name="heartbeats")
            wakes = asyncio.create_task(_wake_on_enqueue(event_log), name="queue-wake-ups")
            sweeps = asyncio.create_task(_expire_reviews(config, event_log), name="review-expiry")
            try:
                async with contextlib.AsyncExitStack() as stack:
                    for plugin in plugins:
                        await stack.enter_async_context(plugin.running())
                    yield executor
            finally:
                wakes.cancel()
                sweeps.cancel()
                await asyncio.wait([wakes, sweeps])
                await _stop(config, executor, event_log, heart)
        finally:
            DBOS.destroy()
            # DBOS shut down the thread pool it gave the loop; the loop gets a new one.
            dbos_compat.reset_default_executor()
            install(None)


#: Seconds between DBOS's checks whether a running task was cancelled (its default, 1 s,
#: would miss the 1-second cancel target; one indexed query per worker per interval).
CANCEL_POLL = 0.2


def _launch(config: WorkerConfig) -> None:
    dbos_compat.set_cancel_poll(CANCEL_POLL)
    # DBOS logs an ERROR with a traceback for every cancelled workflow; a cancel is
    # expected here (cancelTask), so those records are dropped.
    dbos_compat.quiet_cancelled_workflow_logs()
    DBOS(
        config={
            "name": "postassist",
            "system_database_url": plain_url(config.database_url),
            "application_version": VERSION,
            "executor_id": config.worker_id,
            "log_level": "WARNING",
            "enable_otlp": False,
            # SQLite has no LISTEN/NOTIFY: DBOS polls; 0.05 s keeps destroy() fast
            "notification_listener_polling_interval_sec": 0.05,
        }
    )
    dbos_compat.launch()


async def _wake_on_enqueue(event_log: EventLog) -> None:
    """Poll the queue as soon as any process announces a task on the `queue` channel
    (`EventLog.announce_enqueued`): pick-up in milliseconds, not at the next of DBOS's
    `queue_poll` intervals (which still run: a lost announcement costs one interval)."""
    async with event_log.broadcast.subscribe(QUEUE_CHANNEL) as subscriber:
        while True:
            await subscriber.get()
            dbos_compat.wake_queue()


#: Most seconds between two sweeps for reviews that timed out (a tenth of the timeout
#: when that is shorter): a review fails at most this long after its deadline.
REVIEW_SWEEP = 60.0


async def _expire_reviews(config: WorkerConfig, event_log: EventLog) -> None:
    """Fail the reviews older than `review_timeout` (`control.expire_reviews`) every
    `REVIEW_SWEEP` seconds at most; nothing without a timeout."""
    if config.review_timeout is None:
        return
    interval = min(REVIEW_SWEEP, config.review_timeout / 10)
    while True:
        try:
            before = datetime.now(UTC) - timedelta(seconds=config.review_timeout)
            if ended := await expire_reviews(event_log, before=before):
                logger.info("reviews timed out: %s", ", ".join(ended))
        except Exception:
            logger.exception("review expiry failed; trying again")
        await asyncio.sleep(interval)


async def _heartbeats(config: WorkerConfig, event_log: EventLog) -> None:
    """Beat every `heartbeat` seconds; claim and recover stale workers. On SQLite (one
    process by design) every other worker row is stale from the start."""
    dead_after = 0.0 if is_sqlite(config.database_url) else config.dead_after
    while True:
        try:
            async with event_log.session_factory() as session:
                await workers.beat(session=session, worker_id=config.worker_id)
                stale = await workers.stale_workers(
                    session=session, dead_after=dead_after, exclude=config.worker_id
                )
                claimed = [
                    dead
                    for dead in stale
                    if await workers.claim_dead(
                        session=session, worker_id=dead, dead_after=dead_after
                    )
                ]
            if claimed:  # in the background: the heartbeat must not wait for DBOS's pool
                recovery = asyncio.create_task(_take_over(claimed), name="take-over")
                _background.add(recovery)
                recovery.add_done_callback(_background.discard)
        except Exception:
            logger.exception("heartbeat failed; trying again")
        dead_after = config.dead_after
        await asyncio.sleep(config.heartbeat)


_background: set[asyncio.Task[None]] = set()


async def _take_over(dead: list[str]) -> None:
    """Re-enqueue the PENDING workflows of the `dead` executors (DBOS's own recovery,
    which only re-enqueues rows still owned by them: idempotent)."""
    try:
        handles = await asyncio.to_thread(dbos_compat.recover_pending_workflows, dead)
        logger.warning("took over %d tasks of dead workers %s", len(handles), dead)
    except Exception:
        logger.exception("could not take over the tasks of %s", dead)


async def _stop(
    config: WorkerConfig, executor: Executor, event_log: EventLog, heart: asyncio.Task[None]
) -> None:
    """Drain: stop taking work, give running tasks `shutdown_grace`, stop the rest. The
    heartbeat goes on until then, so a grace longer than `dead_after` never lets
    another worker take over tasks that still run here."""
    executor.draining = True
    running = list(executor.running.values())
    if running:
        logger.info("waiting up to %gs for %d tasks", config.shutdown_grace, len(running))
        await asyncio.wait(running, timeout=config.shutdown_grace)
    executor.closing = True
    leftover = [t for t in executor.running.values() if not t.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        await asyncio.wait(leftover, timeout=5)
    heart.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await heart
    async with event_log.session_factory() as session:
        await workers.retire(session=session, worker_id=config.worker_id)
