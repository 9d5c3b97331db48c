"""What the service costs over the bare graph: one `postassist serve` (SQLite, memory bus,
one process) against `build_graph().ainvoke(...)` in this process, on the same stub
model, side by side in one run. Prints tables; asserts nothing.

Service timings: mutation sent -> terminal event received on the `taskProgress`
subscription (WebSocket, opened when the mutation returns). The 50-at-once table gives the
issue's P3 and throughput figures: wall time, tasks per second, and each event's delay
from its server stamp (taken just before its commit) to its arrival at the subscriber.

Usage: `python -m benchmarks.overhead [--quick]` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runtime.worker import open_checkpointer
from benchmarks.harness import (
    CANCEL,
    Timed,
    bare_many,
    bare_model,
    bare_run,
    bench_env,
    median,
    print_table,
    stamp,
    start_service,
    timed_many,
    timed_task,
)
from graph.cli.client import GraphQLClient
from tests.processes import Service, stub_model

#: Limits raised to the most tasks run at once here (the issue's "limits raised to the
#: task count").
AT_ONCE = 50
CONCURRENT = {"MAX_CONCURRENT_GENERATIONS": str(AT_ONCE), "WORKER_CONCURRENCY": str(AT_ONCE)}


@dataclass
class Plan:
    """Repetitions per measurement."""

    single: int  # sequential tasks per latency
    many: int  # rounds of 20 at once
    cancels: int
    recoveries: int
    checkpoint_runs: int


FULL = Plan(single=7, many=2, cancels=3, recoveries=2, checkpoint_runs=20)
QUICK = Plan(single=3, many=1, cancels=2, recoveries=1, checkpoint_runs=8)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _spread(values: list[float]) -> str:
    return f"{_ms(median(values))} ({_ms(min(values))}-{_ms(max(values))})" if values else "-"


async def side_by_side(service: Service, model: Any, reps: int) -> tuple[list, list[Timed]]:
    """`reps` bare runs and `reps` service tasks, alternating, after one warm-up each."""
    client = GraphQLClient(service.url)
    await bare_run(model)
    await timed_task(client)
    bare, served = [], []
    for _ in range(reps):
        bare.append(await bare_run(model))
        _, timed = await timed_task(client)
        assert timed.status == "COMPLETED", timed
        served.append(timed)
    return bare, served


async def many_at_once(
    service: Service, model: Any, rounds: int, n: int = 20, lags: list[float] | None = None
) -> tuple:
    """Median wall seconds of `n` bare runs at once and `n` service tasks at once (each
    event's stamp-to-subscriber delay appended to `lags`)."""
    client = GraphQLClient(service.url)
    bare = [await bare_many(model, n) for _ in range(rounds)]
    served = [await timed_many(client, n, lags) for _ in range(rounds)]
    return median(bare), median(served)


async def cancel_latency(service: Service, reps: int) -> tuple[list[float], list[float]]:
    """cancelTask on a running task (its first agent started): seconds to the mutation's
    response, and to the CANCELLED event reaching the subscriber."""
    client = GraphQLClient(service.url)
    responses, events = [], []
    for _ in range(reps):
        times: dict[str, float] = {}
        pending: list[asyncio.Task] = []

        async def cancel(task_id: str, times=times) -> None:
            times["sent"] = time.time()
            await client.execute(CANCEL, {"id": task_id})
            times["answered"] = time.time()

        async def on_event(task_id: str, event: dict[str, Any], pending=pending) -> None:
            if event["kind"] == "AGENT_STARTED" and not pending:  # in the background:
                pending.append(asyncio.create_task(cancel(task_id)))  # events keep coming

        _, timed = await timed_task(client, on_event=on_event)
        await pending[0]
        assert timed.status == "CANCELLED", timed
        responses.append(times["answered"] - times["sent"])
        events.append(timed.done - times["sent"])
    return responses, events


async def checkpoint_cost(model: Any, workdir: Path, runs: int) -> dict[str, float]:
    """Bare runs at 0 ms without and with the service's SQLite checkpointer
    (durability="sync"), alternating; the difference per checkpoint and per node."""
    url = f"sqlite+aiosqlite:///{workdir / 'checkpoints-bench.db'}"
    async with open_checkpointer(url) as saver:
        await bare_run(model)
        await bare_run(model, saver)
        plain, saved = [], []
        for _ in range(runs):
            plain.append(await bare_run(model))
            saved.append(await bare_run(model, saver))
        conn = saver.conn  # type: ignore[attr-defined]
        async with conn.execute("SELECT count(*) FROM checkpoints") as cursor:
            checkpoints = (await cursor.fetchone())[0] / (runs + 1)
        query = "SELECT count(DISTINCT thread_id || checkpoint_ns || task_id) FROM writes"
        async with conn.execute(query) as cursor:
            nodes = (await cursor.fetchone())[0] / (runs + 1)
    diff = median(saved) - median(plain)
    return {"plain": median(plain), "saved": median(saved), "diff": diff,
            "checkpoints": checkpoints, "nodes": nodes}  # fmt: skip


def recovery(workdir: Path, model_url: str, reps: int) -> dict[str, list[float]]:
    """kill -9 `postassist serve` while the writer works, start it again on the same
    SQLite file: seconds from the restart to /healthz, to TASK_RESUMED (its stamp) and
    to COMPLETED (polled every 20 ms)."""
    out: dict[str, list[float]] = {"ready": [], "resumed": [], "completed": []}
    for n in range(reps):
        env = bench_env(f"sqlite+aiosqlite:///{workdir / f'recover-{n}.db'}", model_url)
        first = Service(env, workdir / f"recover-{n}-a.log")
        task_id = first.generate()
        while not any(e["agent"] == "linkedin_creator" for e in first.events(task_id)):
            time.sleep(0.02)
        first.proc.kill()
        restarted = time.time()
        second = Service(env, workdir / f"recover-{n}-b.log")
        out["ready"].append(time.time() - restarted)
        while second.task(task_id)["status"] != "COMPLETED":
            time.sleep(0.02)
        out["completed"].append(time.time() - restarted)
        resumed = [e for e in second.events(task_id) if e["kind"] == "TASK_RESUMED"]
        out["resumed"].append(stamp(resumed[0]) - restarted)
        second.proc.stop()
    return out


async def measure(workdir: Path, plan: Plan) -> None:
    """Run every measurement and print the tables."""
    with stub_model(workdir, latency=0.0) as url0, stub_model(workdir, latency=0.2) as url200:
        model0, model200 = bare_model(url0), bare_model(url200)
        cost = await checkpoint_cost(model0, workdir, plan.checkpoint_runs)
        lags0: list[float] = []
        lags200: list[float] = []
        service = start_service(workdir, "zero", url0, **CONCURRENT)
        try:
            bare0, served0 = await side_by_side(service, model0, plan.single)
            fifty0 = await many_at_once(service, model0, plan.many, AT_ONCE, lags0)
        finally:
            service.proc.stop()
        service = start_service(workdir, "busy", url200, **CONCURRENT)
        try:
            bare200, served200 = await side_by_side(service, model200, plan.single)
            many20 = await many_at_once(service, model200, plan.many)
            fifty200 = await many_at_once(service, model200, plan.many, AT_ONCE, lags200)
            cancels = await cancel_latency(service, plan.cancels)
        finally:
            service.proc.stop()
        service = start_service(workdir, "default", url200)
        try:
            many3 = await many_at_once(service, model200, plan.many)
        finally:
            service.proc.stop()
        recovered = await asyncio.to_thread(recovery, workdir, url200, plan.recoveries)
    _report(bare0, served0, bare200, served200, many20, many3, cancels, recovered, cost)
    _report_fifty(fifty0, fifty200, lags0, lags200)


def _ratio_row(label: str, bare: float, served: float) -> tuple[str, ...]:
    return (label, f"{bare:.3f}", f"{served:.3f}", f"{served / bare:.2f}x")


def _report(bare0, served0, bare200, served200, many20, many3, cancels, recovered, cost) -> None:
    print_table(
        f"service / bare (seconds; singles: median of {len(bare0)})",
        [
            ("case", "bare s", "service s", "ratio"),
            _ratio_row("1 task, 200 ms per LLM call", median(bare200),
                       median([t.total for t in served200])),
            _ratio_row("1 task, 0 ms per LLM call", median(bare0),
                       median([t.total for t in served0])),
            _ratio_row("  the worker's run alone (RUNNING->COMPLETED)", median(bare0),
                       median([t.finished - t.running for t in served0])),
            _ratio_row(f"20 at once, 200 ms, limit {AT_ONCE}", *many20),
            _ratio_row("20 at once, 200 ms, limit 3 (default)", *many3),
        ],
    )  # fmt: skip
    served = served0 + served200
    print_table(
        "latencies (median (min-max))",
        [
            ("what", "time"),
            ("generatePost round trip", _spread([t.returned - t.sent for t in served])),
            ("pick-up: mutation returned -> RUNNING stamp",
             _spread([t.running - t.returned for t in served])),
            ("first event to a subscriber after the mutation returned",
             _spread([t.first_event - t.returned for t in served])),
            ("terminal event stamp -> at the subscriber",
             _spread([t.done - t.finished for t in served])),
            ("cancelTask on a running task -> response", _spread(cancels[0])),
            ("cancelTask -> CANCELLED event at the subscriber", _spread(cancels[1])),
            ("kill -9, restart -> /healthz answers", _spread(recovered["ready"])),
            ("kill -9, restart -> TASK_RESUMED stamp", _spread(recovered["resumed"])),
            ("kill -9, restart -> COMPLETED (200 ms calls)", _spread(recovered["completed"])),
        ],
    )  # fmt: skip
    print_table(
        "checkpointing (bare graph, 0 ms, AsyncSqliteSaver WAL, durability=sync)",
        [
            ("without", "with", "difference", "checkpoints/run", "per checkpoint",
             "nodes/run", "per node"),
            (_ms(cost["plain"]), _ms(cost["saved"]), _ms(cost["diff"]),
             f"{cost['checkpoints']:.0f}", f"{cost['diff'] / cost['checkpoints'] * 1000:.2f} ms",
             f"{cost['nodes']:.0f}", f"{cost['diff'] / cost['nodes'] * 1000:.2f} ms"),
        ],
    )  # fmt: skip


def _report_fifty(fifty0: tuple, fifty200: tuple, lags0: list, lags200: list) -> None:
    """P3 and the throughput target: 50 at once, and each event's delay to a subscriber."""

    def tail(lags: list[float]) -> str:
        ordered = sorted(lags)
        p99 = ordered[int(len(ordered) * 0.99)] if ordered else 0.0
        return f"{_ms(median(ordered))} / {_ms(p99)} / {_ms(max(ordered, default=0.0))}"

    rows = [
        (
            "case",
            "bare s",
            "service s",
            "ratio",
            "bare tasks/s",
            "service tasks/s",
            "service/bare tasks/s",
            "event stamp -> subscriber p50 / p99 / max",
        )
    ]
    for label, (bare, served), lags in (("200 ms", fifty200, lags200), ("0 ms", fifty0, lags0)):
        rows.append(
            (
                f"{AT_ONCE} at once, {label} per LLM call",
                f"{bare:.2f}",
                f"{served:.2f}",
                f"{served / bare:.2f}x",
                f"{AT_ONCE / bare:.1f}",
                f"{AT_ONCE / served:.1f}",
                f"{bare / served:.2f}x",
                tail(lags),
            )
        )
    print_table(f"{AT_ONCE} tasks at once (limits {AT_ONCE})", rows)  # fmt: skip


def main() -> None:
    """Parse `--quick`, run in a temporary directory, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (~1 minute)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="postassist-bench-") as tmp:
        asyncio.run(measure(Path(tmp), QUICK if args.quick else FULL))
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
