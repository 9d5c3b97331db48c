"""The one place that touches DBOS's internals: what `agents.runtime.worker` needs of DBOS that
DBOS 3.4 has no public API for.

- `set_cancel_poll`: how often a running task checks whether it was cancelled;
- `recover_pending_workflows`: re-enqueue the workflows of dead executors;
- `quiet_cancelled_workflow_logs`: DBOS's log records about cancelled workflows,
  recognised by their text;
- `reset_default_executor`: the event loop's default executor after `DBOS.destroy()`;
- `launch` and `wake_queue`: a queue poll at once when a task was enqueued, instead of
  at the end of DBOS's polling interval.

Each relies on how DBOS works inside, so the installed version is checked at import:
an upgrade that changes them fails here with a message, not with a task that is never
cancelled, never taken over, or a `to_thread` on a shut-down pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from db.compat import require_verified

#: The DBOS releases whose internals this module was written against (PEP 440).
SUPPORTED = "==3.4.*"

require_verified(
    "dbos",
    SUPPORTED,
    seam="agents/runtime/dbos_compat.py",
    check="dbos._core._PREEMPTIBLE_POLL_INTERVAL_SEC, DBOS._recover_pending_workflows, the "
    "text of DBOS's log records about cancelled workflows, what DBOS.destroy() does to "
    "the loop's default executor, and that DBOS.launch() starts dbos._queue.queue_thread "
    "with a threading.Event its queue workers wait on between polls",
)

from dbos import DBOS  # noqa: E402
from dbos import _core as _dbos_core  # noqa: E402
from dbos import _dbos as _dbos_module  # noqa: E402
from dbos import _queue as _dbos_queue  # noqa: E402


def set_cancel_poll(seconds: float) -> None:
    """Make DBOS check every `seconds` whether a workflow that runs a preemptible step
    was cancelled (it then cancels the step), for every DBOS instance of the process.

    Why private: DBOS 3.4 polls every `dbos._core._PREEMPTIBLE_POLL_INTERVAL_SEC`
    (1.0 s), a module constant read at each poll, with no setting of its own; 1 s
    misses the 1-second cancel target. Public replacement: a DBOS config key for the
    interval, when DBOS has one."""
    _dbos_core._PREEMPTIBLE_POLL_INTERVAL_SEC = seconds


def recover_pending_workflows(executor_ids: list[str]) -> list[Any]:
    """Re-enqueue the PENDING workflows of the executors `executor_ids` (blocking: call
    it in a thread) and return their handles.

    Why private: the open-source DBOS recovers only its own executor's workflows at
    launch; taking over a dead executor's is what DBOS Conductor (hosted) does, through
    `DBOS._recover_pending_workflows`. It re-enqueues only rows still owned by those
    executors, so two workers recovering the same dead one are harmless. Public
    replacement: none in 3.4; `DBOS.list_workflows(status="PENDING", executor_id=...)`
    with `DBOS.resume_workflow` comes close but is not the same: it re-enqueues
    whoever owns the row by then, and resets the recovery attempts."""
    return DBOS._recover_pending_workflows(executor_ids)


class _QuietCancels(logging.Filter):
    """Drops the records of the `dbos` logger about a cancelled workflow.

    Why: DBOS logs an ERROR with a traceback for every cancelled workflow; a cancel is
    expected here (cancelTask). The records are recognised by their text ("cancelled")
    or their exception's class name (`DBOSWorkflowCancelledError`, asyncio's
    `CancelledError`): DBOS's wording, not an API. Public replacement: a DBOS setting
    that logs expected cancellations below ERROR (raising `log_level` would hide real
    errors too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        return "cancelled" not in text.lower() and "Cancelled" not in type(error).__name__


def quiet_cancelled_workflow_logs() -> None:
    """Install `_QuietCancels` on the `dbos` logger, once per process."""
    dbos_logger = logging.getLogger("dbos")
    if not any(isinstance(f, _QuietCancels) for f in dbos_logger.filters):
        dbos_logger.addFilter(_QuietCancels())


def reset_default_executor() -> None:
    """Give the running loop a new default executor; call it after `DBOS.destroy()`.

    Why: DBOS 3.4's async calls (`register_queue_async`, `start_workflow_async`...) make
    a wrapper of DBOS's own thread pool the loop's default executor, and `destroy()`
    shuts that pool down, so the loop's next `to_thread` (the app's, or the next
    worker's in the same process) would fail.
    Public replacement: a `destroy()` that gives the loop its executor back, when DBOS
    has one."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())


class _WakeableStop(threading.Event):
    """The stop event of DBOS's queue threads, whose `wait` `wake()` can also end early.

    A woken `wait` returns the flag (False: not stopped), so a queue worker polls at
    once and goes on; `set()` still stops it. (`threading.Event.wait` would return True
    for any notify, which a queue worker reads as "stop".)"""

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:  # type: ignore[attr-defined]
            if not self._flag:  # type: ignore[attr-defined]
                self._cond.wait(timeout)  # type: ignore[attr-defined]
            return bool(self._flag)  # type: ignore[attr-defined]

    def wake(self) -> None:
        """End every current `wait` without stopping."""
        with self._cond:  # type: ignore[attr-defined]
            self._cond.notify_all()  # type: ignore[attr-defined]


_queue_stop: _WakeableStop | None = None


class _LaunchThreading(types.ModuleType):
    """`threading` as `dbos._dbos` sees it during `launch`: the same, except that the
    queue thread's stop event becomes a `_WakeableStop` before the thread starts."""

    def __init__(self) -> None:
        super().__init__("threading")

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    def Thread(self, *args: Any, **kwargs: Any) -> threading.Thread:
        global _queue_stop
        if kwargs.get("target") is _dbos_queue.queue_thread:
            stop = kwargs["args"][0]
            stop.__class__ = _WakeableStop  # no new state: the same object, a subclass
            _queue_stop = stop
        return threading.Thread(*args, **kwargs)


def launch() -> None:
    """`DBOS.launch()`, with a queue that `wake_queue()` can make poll at once.

    Why private: DBOS 3.4's queue workers sleep `polling_interval_sec` between polls on
    the stop event `launch()` gives `dbos._queue.queue_thread`, and nothing else ends the
    sleep: a task enqueued just after a poll waits a whole interval (0.1 s here) to
    start. `dbos._dbos` is given a `threading` whose `Thread` makes that one event a
    `_WakeableStop`, for the length of `launch()` only. Public replacement: a DBOS call
    that wakes a queue (LISTEN/NOTIFY does it on PostgreSQL for some releases), or a
    push-based queue."""
    _dbos_module.threading = _LaunchThreading()  # type: ignore[assignment]
    try:
        DBOS.launch()
    finally:
        _dbos_module.threading = threading


def wake_queue() -> None:
    """Make DBOS's queue workers in this process poll now (nothing before `launch()`; a
    stopped DBOS ignores it). Thread-safe and cheap: one notify."""
    if _queue_stop is not None:
        _queue_stop.wake()


__all__ = [
    "SUPPORTED",
    "launch",
    "quiet_cancelled_workflow_logs",
    "recover_pending_workflows",
    "reset_default_executor",
    "set_cancel_poll",
    "wake_queue",
]
