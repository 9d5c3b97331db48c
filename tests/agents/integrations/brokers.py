"""What the broker tests share: the app with its worker, the outbox and (optionally)
the consumer on a real broker, subjects of their own per test (`Subjects`), reads of
the outbox table, and stopping and starting the local NATS server (services.md)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from db.engine import create_engine, create_session_factory
from db.messages import OutboxMessage
from graph.settings import Settings
from tests.conftest import service_missing

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_SERVER = "/usr/sbin/nats-server"
NATS_ARGS = ["-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server",
             "-l", "/var/log/nats-server.log"]  # fmt: skip
#: Seconds the outbox may take to send everything here.
SENT_WITHIN = 60.0


@dataclass(frozen=True)
class Subjects:
    """A test's own subjects (and RabbitMQ exchange), so runs never share messages."""

    prefix: str

    @classmethod
    def new(cls) -> Subjects:
        return cls(f"t{uuid.uuid4().hex[:10]}")

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def requests(self) -> str:
        return f"{self.prefix}.requests"

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.requests.dead"

    def settings(self, database_url: str, broker_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "rate_limit_mutations": "10000/minute",
            "webhook_allow_private": True,
            "queue_poll_seconds": 0.1,
            "broker_url": broker_url,
            "broker_events_subject": self.events,
            "broker_exchange": self.prefix,
            "broker_requests_subject": self.requests,
            "broker_results_subject": self.results,
            "broker_dead_letter_subject": self.dead,
        }
        return Settings(**{**values, **overrides}, _env_file=None)


async def reachable(url: str) -> None:
    """`service_missing` unless the broker at `url` accepts a connection within 3 s."""
    try:
        if url.startswith("nats"):
            import nats

            connection = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
            await connection.close()
        else:
            import aio_pika

            connection = await asyncio.wait_for(aio_pika.connect(url), 3)
            await connection.close()
    except Exception as exc:
        service_missing(f"{url} is not reachable: {exc}")


async def outbox(database_url: str) -> list[OutboxMessage]:
    """Every outbox row, in `id` order."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            found = await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
            return list(found.all())
    finally:
        await engine.dispose()


async def all_sent(database_url: str, within: float = SENT_WITHIN) -> list[OutboxMessage]:
    """The outbox once it holds rows and every one is sent."""
    async with asyncio.timeout(within):
        while True:
            rows = await outbox(database_url)
            if rows and all(row.sent_at is not None for row in rows):
                return rows
            await asyncio.sleep(0.1)


async def wait_for(check: Callable[[], Any], within: float = 30.0) -> Any:
    async with asyncio.timeout(within):
        while not (found := await check()):  # noqa: ASYNC110 - polls, as a client would
            await asyncio.sleep(0.05)
    return found


def _nats_pid() -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "exe") == NATS_SERVER:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                if b"4222" in args:
                    return int(proc.name)
        except OSError:
            continue
    return None


def stop_nats() -> None:
    """Stop the local NATS server (by its process id; `service_missing` if it cannot)."""
    pid = _nats_pid()
    if pid is None:
        service_missing("no local nats-server process on port 4222 to stop")
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        service_missing("not allowed to stop the local nats-server")
    deadline = time.monotonic() + 10
    while _nats_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def start_nats() -> None:
    """Start the local NATS server as services.md does (no-op while it runs) and wait
    until it accepts connections."""
    subprocess.run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", NATS_SERVER,
         "--", *NATS_ARGS],
        check=False,
    )  # fmt: skip
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", 4222), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)


@asynccontextmanager
async def nats_connection() -> AsyncIterator[Any]:
    import nats

    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        yield connection
    finally:
        await connection.close()


async def stream_messages(js: Any, stream: str) -> list[Any]:
    """Every message stored in the JetStream `stream`, in stream order."""
    info = await js.stream_info(stream)
    return [
        await js.get_msg(stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


async def delete_streams(*names: str) -> None:
    async with nats_connection() as connection:
        js = connection.jetstream()
        for name in names:
            try:
                await js.delete_stream(name)
            except Exception:  # never created
                continue
