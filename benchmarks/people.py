"""People in the loop (issue 15's figures): review round trip, pause latency and the
wall-time gain of PARALLEL verification, on one `postassist serve` (SQLite, memory bus,
default poll intervals) and the stub model at a fixed latency per call. Prints tables;
asserts nothing.

- Review round trip: `reviewTask(APPROVE)` sent -> its COMPLETED event received on the
  task's `taskProgress` subscription; and REVISE sent -> the RUNNING event of the
  continued run received (its pick-up by a worker).
- Pause latency: `pauseTask` sent on a RUNNING task (at a random point of a node) -> its
  answer, and -> the PAUSED event received (the run stops at its next node boundary, so
  this is bounded by one node's model calls).
- PARALLEL gain: the same request with `orchestrationMode` SEQUENTIAL and PARALLEL,
  alternating, mutation sent -> terminal event received.

Usage: `python -m benchmarks.people [--quick] [--latency SECONDS]` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import median, print_table, start_service
from graph.cli.client import TASK_PROGRESS, GraphQLClient
from tests.processes import GENERATE, INPUT, stub_model

REVIEW = """mutation($id: ID!, $decision: ReviewDecision!, $feedback: String) {
  reviewTask(id: $id, decision: $decision, feedback: $feedback) { status } }"""
PAUSE = "mutation($id: ID!) { pauseTask(id: $id) { status } }"
RESUME = "mutation($id: ID!) { resumeTask(id: $id) { status } }"
#: Seconds a benchmark waits for one status before it gives up.
WAIT = 120.0
#: Reviews reach the service at once: a generous queue.
LIMITS = {"MAX_CONCURRENT_GENERATIONS": "3", "WORKER_CONCURRENCY": "3"}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _row(name: str, values: list[float]) -> tuple[str, ...]:
    if not values:
        return (name, "-", "-", "-", "0")
    return (name, _ms(median(values)), _ms(min(values)), _ms(max(values)), str(len(values)))


class Follower:
    """Follows one task's `taskProgress` in the background, noting when each status
    event arrived (epoch seconds), in order."""

    def __init__(self, client: GraphQLClient, task_id: str) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.seen = asyncio.Event()
        self._task = asyncio.create_task(self._follow(client, task_id))

    async def _follow(self, client: GraphQLClient, task_id: str) -> None:
        async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
            event = data["taskProgress"]
            if event["kind"] == "TASK_STATUS":
                self.arrivals.append((event["status"], time.time()))
                self.seen.set()

    async def until(self, status: str, *, nth: int = 1) -> float:
        """When the `nth` event with `status` arrived (`WAIT` seconds at most)."""
        async with asyncio.timeout(WAIT):
            while [s for s, _ in self.arrivals].count(status) < nth:
                self.seen.clear()
                await self.seen.wait()
        return [t for s, t in self.arrivals if s == status][nth - 1]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _start(client: GraphQLClient, **fields: Any) -> str:
    data = await client.execute(GENERATE, {"input": {**INPUT, **fields}})
    return data["generatePost"]["id"]


async def reviews(client: GraphQLClient, reps: int) -> tuple[list[float], list[float]]:
    """APPROVE -> COMPLETED and REVISE -> RUNNING, each `reps` times."""
    approve, revise = [], []
    for _ in range(reps):
        task_id = await _start(client, review="ALWAYS")
        follower = Follower(client, task_id)
        await follower.until("AWAITING_REVIEW")
        sent = time.time()
        await client.execute(REVIEW, {"id": task_id, "decision": "REVISE", "feedback": "Shorter."})
        revise.append(await follower.until("RUNNING", nth=2) - sent)
        await follower.until("AWAITING_REVIEW", nth=2)
        sent = time.time()
        await client.execute(REVIEW, {"id": task_id, "decision": "APPROVE"})
        approve.append(await follower.until("COMPLETED") - sent)
        await follower.close()
    return approve, revise


async def pauses(client: GraphQLClient, reps: int, latency: float) -> tuple[list[float], ...]:
    """pauseTask at a random moment of a run: -> answer, -> PAUSED; resume -> RUNNING."""
    answered, paused, resumed = [], [], []
    for _ in range(reps):
        task_id = await _start(client)
        follower = Follower(client, task_id)
        await follower.until("RUNNING")
        await asyncio.sleep(random.uniform(1, 6) * latency)
        sent = time.time()
        await client.execute(PAUSE, {"id": task_id})
        answered.append(time.time() - sent)
        paused.append(await follower.until("PAUSED") - sent)
        sent = time.time()
        await client.execute(RESUME, {"id": task_id})
        resumed.append(await follower.until("RUNNING", nth=2) - sent)
        await follower.until("COMPLETED")
        await follower.close()
    return answered, paused, resumed


async def modes(client: GraphQLClient, reps: int) -> dict[str, list[float]]:
    """Mutation sent -> terminal event received, per orchestration mode, alternating."""
    walls: dict[str, list[float]] = {"SEQUENTIAL": [], "PARALLEL": []}
    for _ in range(reps):
        for mode in walls:
            sent = time.time()
            task_id = await _start(client, orchestrationMode=mode)
            follower = Follower(client, task_id)
            walls[mode].append(await follower.until("COMPLETED") - sent)
            await follower.close()
    return walls


async def main(quick: bool, latency: float) -> None:
    reps = 3 if quick else 8
    with tempfile.TemporaryDirectory() as tmp, stub_model(Path(tmp), latency=latency) as url:
        service = start_service(Path(tmp), "people", url, **LIMITS)
        try:
            client = GraphQLClient(service.url)
            await _start(client)  # warm-up
            approve, revise = await reviews(client, reps)
            answered, paused, resumed = await pauses(client, reps, latency)
            walls = await modes(client, reps)
        finally:
            service.proc.stop()
    header = ("measure", "median", "min", "max", "n")
    print(f"stub model: {latency * 1000:.0f} ms per call; one serve, SQLite, memory bus")
    print_table(
        "Review and pause",
        [
            header,
            _row("APPROVE sent -> COMPLETED received", approve),
            _row("REVISE sent -> RUNNING received", revise),
            _row("pauseTask sent -> answered", answered),
            _row("pauseTask sent -> PAUSED received", paused),
            _row("resumeTask sent -> RUNNING received", resumed),
        ],
    )
    sequential, parallel = median(walls["SEQUENTIAL"]), median(walls["PARALLEL"])
    print_table(
        "Verification mode (mutation sent -> COMPLETED received)",
        [header, _row("SEQUENTIAL", walls["SEQUENTIAL"]), _row("PARALLEL", walls["PARALLEL"])],
    )
    if sequential:
        print(f"\n  PARALLEL / SEQUENTIAL wall time: {parallel / sequential:.2f} "
              f"(saves {_ms(sequential - parallel)} a task)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 8")
    parser.add_argument("--latency", type=float, default=0.2, help="stub seconds per call")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.latency))
