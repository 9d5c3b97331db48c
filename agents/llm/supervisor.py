"""The bundled model server's supervision while the app runs (`supervise`): a server that
dies is restarted on the same port (so models built earlier still reach it), a call
that timed out restarts it (llama-cpp-python's server goes on computing a request whose
client left), and the `ModelGate` is told: DOWN while it restarts, failed for good after
`max_restarts` deaths in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from agents.llm.gate import ModelGate
from agents.llm.local_server import LocalModelServer

logger = logging.getLogger(__name__)

#: The bundled server counts as healthy again (its restart budget refilled) after
#: running this many seconds without dying.
HEALTHY_AFTER = 60.0
#: Seconds between checks that the supervised server process is alive.
WATCH_INTERVAL = 0.5


@contextlib.asynccontextmanager
async def supervise(
    server: LocalModelServer, gate: ModelGate, *, max_restarts: int = 3
) -> AsyncIterator[None]:
    """Watch the started `server` for the context's lifetime (see the module), and make
    `gate.on_timeout` restart it meanwhile (the gate's own `on_timeout` is put back on
    exit)."""
    supervisor = _Supervisor(server, gate, max_restarts)
    watcher = asyncio.create_task(supervisor.watch(), name="model-watch")
    original = gate.on_timeout
    gate.on_timeout = supervisor.restart_shielded
    try:
        yield
    finally:
        gate.on_timeout = original
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


class _Supervisor:
    """The watcher and the timed-out call's restart of one `supervise` context."""

    def __init__(self, server: LocalModelServer, gate: ModelGate, max_restarts: int) -> None:
        self.server = server
        self.gate = gate
        self.max_restarts = max_restarts
        self.restarts: set[asyncio.Task[None]] = set()

    async def restart_shielded(self) -> None:
        """Restart for a timed-out call in a task of its own: a caller cancelled meanwhile
        (cancelTask, the attempt's timeout) must not leave the server half restarted and
        the gate DOWN."""
        restart = asyncio.create_task(self._restart_for_timeout(), name="model-restart")
        self.restarts.add(restart)
        restart.add_done_callback(self.restarts.discard)
        await asyncio.shield(restart)

    async def _restart_for_timeout(self) -> None:
        self.gate.down("restarting after a timed-out call")
        try:
            await self.server.restart()
        except Exception as exc:
            logger.error("the local model server did not come back: %s", exc)
            return  # the watcher sees the dead process and restarts it or gives up
        self.gate.up()

    async def watch(self) -> None:
        """Restart the server each time it dies, until it dies `max_restarts` + 1 times
        in a row (a run of `HEALTHY_AFTER` seconds starts the count again)."""
        server, gate, max_restarts = self.server, self.gate, self.max_restarts
        deaths, started = 0, time.monotonic()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if server.restarting or server.is_running():
                if time.monotonic() - started >= HEALTHY_AFTER:
                    deaths = 0  # it ran long enough: a new budget of restarts
                continue
            deaths += 1
            message = server.exit_message()
            if deaths > max_restarts:
                gate.fail(
                    f"the bundled model server died {deaths} times in a row and is not "
                    f"restarted again (LOCAL_MODEL_MAX_RESTARTS={max_restarts}): {message[:300]}"
                )
                return
            logger.warning(
                "the local model server died (restart %d of %d): %s", deaths, max_restarts, message
            )
            gate.down(f"restarting after it exited (restart {deaths} of {max_restarts})")
            gate.restarts += 1
            try:
                await server.restart()
            except Exception as exc:  # OSError from Popen too: the watcher must go on
                logger.error("restart %d of the local model server failed: %s", deaths, exc)
                continue
            started = time.monotonic()
            gate.up()
