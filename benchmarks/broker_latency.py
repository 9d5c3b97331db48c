"""Commit-to-broker latency of lifecycle events: the app with its worker, the outbox and
the scripted model in this process, `--tasks` generations (50) submitted at once, and a
subscriber on the real broker (NATS JetStream on 127.0.0.1:4222, RabbitMQ on :5672).

For each message: the time it reached the subscriber minus its CloudEvent `time` (when
its row was written, in the event's transaction, a few milliseconds before the commit);
both clocks are this machine's. Prints p50 / p95 / max in milliseconds per broker and
database, and the messages counted. No assertions.

    .venv/bin/python -m benchmarks.broker_latency [--tasks 50] [--brokers nats,rabbit]
        [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.integrations.broker import stream_name
from tests.agents.integrations.brokers import AMQP_URL, NATS_URL, Subjects, delete_streams
from tests.graph.api.test_webhooks import GENERATE, INPUT, service


@asynccontextmanager
async def listen(
    url: str, subjects: Subjects, seen: Callable[[bytes], None]
) -> AsyncIterator[None]:
    """Hand every lifecycle message's body to `seen` while the context lasts."""

    async def keep(message: Any) -> None:
        seen(message.data if url.startswith("nats") else message.body)

    if url.startswith("nats"):
        import nats

        connection = await nats.connect(url)
        await connection.subscribe(f"{subjects.events}.>", cb=keep)
        try:
            yield
        finally:
            await connection.close()
            await delete_streams(stream_name(subjects.events))
        return
    import aio_pika

    amqp = await aio_pika.connect(url)
    channel = await amqp.channel()
    topic = aio_pika.ExchangeType.TOPIC
    exchange = await channel.declare_exchange(subjects.prefix, topic, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, f"{subjects.events}.#")
    await queue.consume(keep, no_ack=True)
    try:
        yield
    finally:
        await exchange.delete()
        await amqp.close()


async def postgres_url() -> tuple[str, Callable[[], Any]] | None:
    from tests.conftest import _drop_postgres_database, _postgres_database

    name = await _postgres_database()
    if name is None:
        return None
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", lambda: _drop_postgres_database(
        name
    )


async def measure(broker_url: str, database_url: str, tasks: int) -> list[float]:
    """Milliseconds from each event's row to its arrival, for `tasks` generations."""
    subjects = Subjects.new()
    latencies: list[float] = []

    def seen(body: bytes) -> None:
        event = json.loads(body)
        written = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        latencies.append((time.time() - written) * 1000)

    settings = subjects.settings(database_url, broker_url, max_queued_per_principal=1000)
    async with listen(broker_url, subjects, seen), service(settings) as gql:
        ids = []
        for _ in range(tasks):
            answer = await gql(GENERATE, input=INPUT)
            if not answer.get("data"):
                raise RuntimeError(f"generatePost refused: {answer}")
            ids.append(answer["data"]["generatePost"]["id"])
        for task_id in ids:
            await gql.wait_until_finished(task_id)
        expected = 3 * tasks
        deadline = time.monotonic() + 30
        while len(latencies) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return latencies


def figures(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered):7.1f}  p95 {p95:7.1f}  max {ordered[-1]:7.1f}"
        f"  ({len(ordered)} messages)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--brokers", default="nats,rabbit")
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    urls = {"nats": NATS_URL, "rabbit": AMQP_URL}
    print(
        f"commit -> broker message latency, ms ({args.tasks} tasks, 3 lifecycle events each, "
        "BROKER_PUBLISH_INTERVAL_SECONDS=0.5)"
    )
    for database in args.databases.split(","):
        for broker in args.brokers.split(","):
            drop = None
            if database == "postgres":
                found = await postgres_url()
                if found is None:
                    print(f"{database:8} {broker:6}  PostgreSQL not running")
                    continue
                database_url, drop = found
            else:
                database_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
            try:
                latencies = await measure(urls[broker], database_url, args.tasks)
                print(f"{database:8} {broker:6}  {figures(latencies)}")
            finally:
                if drop is not None:
                    await drop()
                if database == "sqlite":
                    shutil.rmtree(Path(database_url.removeprefix("sqlite+aiosqlite:///")).parent)


if __name__ == "__main__":
    asyncio.run(main())
