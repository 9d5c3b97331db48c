"""A redis-server of a test's own on a free port, to stop and start again at will
without touching the shared Redis on 6379 that other tests use."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import service_missing

#: Seconds a fresh redis-server may take to answer PING.
START_WITHIN = 10.0


def redis_server_path() -> str | None:
    """The redis-server executable (/usr/bin/redis-server here), or None."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisProcess:
    """`redis-server --port <port>` without persistence, in `directory`; `start()` waits
    until it answers PING, `kill()` is SIGKILL (a crash, connections reset)."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.url = f"redis://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers; raises `RuntimeError` if it does
        not within START_WITHIN seconds."""
        self.directory.mkdir(parents=True, exist_ok=True)
        executable = redis_server_path()
        assert executable is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_WITHIN
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server and wait for it (nothing if it is not running)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def answers(self) -> bool:
        """True when the server answers PING on its port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisProcess]:
    """A started `RedisProcess` on a free port, killed at the end; skips the test (fails
    it in CI) when redis-server is not installed."""
    if redis_server_path() is None:
        service_missing("redis-server is not installed")
    server = RedisProcess(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
