"""What the webhook sink adds to a status change (issue 16): `EventLog.append` of a
TASK_STATUS event on a SQLite file, side by side in one run, with no sink, with the
webhook sink and no webhook registered (the common case: one indexed read of the
owner's webhooks), and with the sink and two matching webhooks (two delivery rows and
two DBOS workflows enqueued in the event's transaction). A MESSAGE event, which no sink
sees, is the floor. Prints a table; asserts nothing.

Usage: `python -m benchmarks.sinks [--appends 300]` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from broadcaster import Broadcast
from dbos import DBOS, DBOSClient

from agents.integrations.lifecycle import LifecycleEvent
from agents.integrations.webhooks import WebhookSink
from agents.teams.state import initial_teams
from benchmarks.harness import print_table
from db import repository
from db.engine import create_engine, create_session_factory, plain_url
from db.enums import EventKind, TaskKind, TaskStatus
from db.event_log import EventLog
from db.events import Event
from db.messages import Webhook
from db.migrate import upgrade_to_head
from db.models import PostRequest

REQUEST = PostRequest(paper_title="Attention Is All You Need")


async def _timed(log: EventLog, task_id: str, event: Event, appends: int) -> list[float]:
    times = []
    for _ in range(appends):
        started = time.perf_counter()
        await log.append(task_id, event)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run(appends: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'sinks.db'}"
        engine = create_engine(url)
        await upgrade_to_head(engine)
        await asyncio.to_thread(DBOS.migrate, plain_url(url))
        client = DBOSClient(system_database_url=plain_url(url))
        sessions = create_session_factory(engine)
        broadcast = Broadcast("memory://")
        await broadcast.connect()
        try:
            async with sessions() as session:
                tasks = [
                    await repository.create_task(
                        session=session,
                        request=REQUEST,
                        kind=TaskKind.GENERATE,
                        teams=initial_teams(),
                        owner=owner,
                    )
                    for owner in ("plain", "no-hooks", "two-hooks")
                ]
                for n in range(2):
                    session.add(
                        Webhook(
                            owner="two-hooks",
                            url=f"http://127.0.0.1:9/{n}",
                            events=[LifecycleEvent.TASK_RUNNING.value],
                            secret="whsec_x",
                        )
                    )
                await session.commit()
            bare = EventLog(session_factory=sessions, broadcast=broadcast)
            sunk = EventLog(
                session_factory=sessions, broadcast=broadcast, sinks=[WebhookSink(client)]
            )
            running = Event.task_status(TaskStatus.RUNNING)
            message = Event(EventKind.MESSAGE, "a message")
            cases = [
                ("MESSAGE, no sink sees it", sunk, tasks[0].id, message),
                ("TASK_STATUS, no sink", bare, tasks[0].id, running),
                ("TASK_STATUS, webhook sink, no webhook", sunk, tasks[1].id, running),
                ("TASK_STATUS, webhook sink, 2 webhooks", sunk, tasks[2].id, running),
            ]
            results: dict[str, list[float]] = {name: [] for name, *_ in cases}
            for _ in range(3):  # interleaved rounds: the same disk and load for each case
                for name, log, task_id, event in cases:
                    results[name] += await _timed(log, task_id, event, appends // 3)
        finally:
            await broadcast.disconnect()
            client.destroy()
            await engine.dispose()
    floor = statistics.median(results["TASK_STATUS, no sink"])
    rows = [("append of", "p50", "p95", "vs no sink")]
    for name, times in results.items():
        ordered = sorted(times)
        p50 = statistics.median(ordered)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        rows.append((name, f"{p50:.2f} ms", f"{p95:.2f} ms", f"{p50 / floor:.2f}x"))
    print_table(f"EventLog.append on SQLite, {appends} appends per case", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300)
    asyncio.run(run(parser.parse_args().appends))


if __name__ == "__main__":
    main()
