"""A fleet on PostgreSQL + Redis: one API-only `postassist serve --no-worker` and two
`postassist worker` processes on a scratch database, a stub model at 200 ms per call.
Prints throughput for N tasks submitted at once, and recovery after `kill -9` of a
worker: restarted with the same WORKER_ID, and never restarted (another worker takes
its tasks over after WORKER_DEAD_AFTER_SECONDS). Asserts nothing. Task states are
polled through the API every 50 ms.

Usage: `python -m benchmarks.fleet [--quick] [--tasks N] [--dead-after SECONDS]`
(needs PostgreSQL on 127.0.0.1:5432, user postgres, and Redis on 127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from benchmarks.harness import bench_env, median, print_table, stamp
from tests.processes import Proc, Service, stub_model, worker

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"
POLL = 0.05


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Fleet:
    """The API replica and workers w1, w2 on one database."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.api = Service(env, workdir / "api.log", worker=False)
        self.workers: dict[str, Proc] = {}
        for name in ("w1", "w2"):
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        """Start worker `name` and wait until it says it is ready."""
        log = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.workers[name] = worker({**self.env, "WORKER_ID": name}, log)
        self.workers[name].wait_output(f"worker {name} ready")

    def wait_completed(self, task_ids: list[str], timeout: float = 300) -> float:
        """Poll until every task is COMPLETED; returns the epoch second it was seen."""
        deadline = time.monotonic() + timeout
        pending = set(task_ids)
        while pending:
            pending = {t for t in pending if self.api.task(t)["status"] != "COMPLETED"}
            assert time.monotonic() < deadline, f"not completed: {pending}"
            time.sleep(POLL)
        return time.time()

    def running_on(self, name: str, task_ids: list[str]) -> list[str]:
        """Wait until at least one of `task_ids` runs on worker `name` with an agent at
        work; returns those that run there."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tasks = [self.api.task(t) for t in task_ids]
            mine = [t["id"] for t in tasks if t["workerId"] == name and t["status"] == "RUNNING"]
            if mine and any(e["kind"] == "AGENT_STARTED" for e in self.api.events(mine[0])):
                return mine
            time.sleep(POLL)
        raise AssertionError(f"no task ran on {name}")

    def resumed_at(self, task_ids: list[str]) -> float:
        """The latest TASK_RESUMED stamp among `task_ids`."""
        return max(
            stamp(e) for t in task_ids for e in self.api.events(t) if e["kind"] == "TASK_RESUMED"
        )

    def close(self) -> None:
        """Stop every process."""
        for proc in self.workers.values():
            proc.stop()
        self.api.proc.stop()


def throughput(fleet: Fleet, n: int) -> tuple[float, dict[str, int]]:
    """Wall seconds for `n` tasks submitted at once, and how many each worker ran."""
    started = time.time()
    ids = [fleet.api.generate() for _ in range(n)]
    done = fleet.wait_completed(ids)
    per_worker: dict[str, int] = {}
    for task_id in ids:
        owner = fleet.api.task(task_id)["workerId"]
        per_worker[owner] = per_worker.get(owner, 0) + 1
    return done - started, per_worker


def kill_and_recover(fleet: Fleet, restart: bool) -> dict[str, float]:
    """Submit 6 tasks (w2 takes at most 3), kill -9 w1 while it runs some; restart it
    with the same id or not. Seconds from the kill (or the restart) to TASK_RESUMED and
    to all COMPLETED."""
    ids = [fleet.api.generate() for _ in range(6)]
    victims = fleet.running_on("w1", ids)
    fleet.workers["w1"].kill()
    origin = time.time()
    if restart:
        fleet.start_worker("w1")
    ready = time.time() - origin
    done = fleet.wait_completed(ids)
    return {
        "victims": len(victims),
        "ready": ready if restart else 0.0,
        "resumed": fleet.resumed_at(victims) - origin,
        "completed": done - origin,
    }


def run(workdir: Path, args: argparse.Namespace) -> None:
    """Create the scratch database, start the fleet, measure, print, drop the database."""
    name = f"postassist_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        with stub_model(workdir, latency=0.2) as model_url:
            env = bench_env(
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
                model_url,
                BROADCAST_URL=REDIS_URL,
                MAX_CONCURRENT_GENERATIONS="6",
                WORKER_DEAD_AFTER_SECONDS=str(args.dead_after),
                SHUTDOWN_GRACE_SECONDS="2",
            )
            fleet = Fleet(workdir, env)
            try:
                _measure(fleet, args)
            finally:
                fleet.close()
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _measure(fleet: Fleet, args: argparse.Namespace) -> None:
    fleet.wait_completed([fleet.api.generate()])  # warm-up
    walls, spread = [], {}
    for _ in range(args.rounds):
        wall, spread = throughput(fleet, args.tasks)
        walls.append(wall)
    wall = median(walls)
    print_table(
        f"throughput: {args.tasks} tasks at once, 2 workers x 3, global limit 6, 200 ms/call",
        [
            ("wall s", "tasks/s", "per worker (last round)"),
            (f"{wall:.2f}", f"{args.tasks / wall:.2f}", str(dict(sorted(spread.items())))),
        ],
    )
    restarted = kill_and_recover(fleet, restart=True)
    gone = kill_and_recover(fleet, restart=False)
    print_table(
        "recovery after kill -9 of worker w1 (6 tasks queued, some running on w1)",
        [
            ("case", "tasks on w1", "-> w1 ready", "-> TASK_RESUMED", "-> all COMPLETED"),
            _row("restarted, same WORKER_ID (from the restart)", restarted),
            _row(f"never restarted, dead after {args.dead_after:g} s (from the kill)", gone),
        ],
    )


def _row(label: str, figures: dict[str, float]) -> tuple[str, ...]:
    ready = f"{figures['ready']:.2f} s" if figures["ready"] else "-"
    return (label, f"{figures['victims']:.0f}", ready,
            f"{figures['resumed']:.2f} s", f"{figures['completed']:.2f} s")  # fmt: skip


def main() -> None:
    """Parse the options, run in a temporary directory, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 tasks, one round")
    parser.add_argument("--tasks", type=int, default=30, help="tasks submitted at once")
    parser.add_argument("--dead-after", type=float, default=30.0, help="WORKER_DEAD_AFTER_SECONDS")
    args = parser.parse_args()
    args.rounds = 1 if args.quick else 2
    if args.quick:
        args.tasks = min(args.tasks, 12)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="postassist-fleet-") as tmp:
        run(Path(tmp), args)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
