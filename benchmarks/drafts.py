"""The post as it is written: how soon the first DRAFT_DELTA reaches a subscriber after
LinkedInCreator's AGENT_STARTED, and what streaming costs a run.

Each run is the bare in-process graph (`build_graph().ainvoke`) on the memory bus, once
with a `DraftPublisher` in its context (the writer's calls stream, deltas are published
on `draft:<id>` and read by a subscriber) and once without (no streaming). The model is
the stub (`tests.stub_model`: `--latency` seconds before the first token, then one
~4-character piece every `--token-seconds`, streamed or not), and with `--local` also
the bundled SmolLM2 once.

Run: `python -m benchmarks.drafts [--runs 5] [--latency 0.05] [--token-seconds 0.01]
[--local]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from agents.llm.chat import ModelConfig, open_model
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph
from agents.teams.nodes import RunContext
from agents.teams.state import initial_state
from benchmarks.harness import REQUEST, bare_model, print_table
from db.bus import broadcast_for
from db.drafts import DraftPublisher, subscribe_drafts
from db.enums import EventKind
from db.events import Event
from tests.graph.conftest import free_port, serve
from tests.stub_model import create_stub


async def one_run(model: Any, bus: Any, *, drafts: bool) -> dict[str, float]:
    """One bare run: wall and CPU seconds (this process, the stub included), and with
    `drafts` the first delta's latency after the writer's AGENT_STARTED (seconds), the
    deltas received, the bus messages sent and the seconds spent sending them."""
    task_id = uuid.uuid4().hex
    started_writer: list[float] = []
    arrivals: list[float] = []

    async def emit(event: Event) -> None:
        if event.kind == EventKind.AGENT_STARTED and event.agent == "linkedin_creator":
            started_writer.append(time.perf_counter())

    publisher = DraftPublisher(bus, task_id) if drafts else None
    async with subscribe_drafts(bus, task_id) as deltas:

        async def receive() -> None:
            async for _delta in deltas:
                arrivals.append(time.perf_counter())

        receiver = asyncio.create_task(receive())
        began, cpu = time.perf_counter(), time.process_time()
        await build_graph().ainvoke(
            initial_state(REQUEST, max_revisions=2),
            {"recursion_limit": RECURSION_LIMIT},
            context=RunContext(model=model, emit=emit, drafts=publisher),
        )
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        await asyncio.sleep(0.05)
        receiver.cancel()
    out = {"wall": wall, "cpu": cpu, "deltas": float(len(arrivals))}
    if publisher is not None:
        out["published"], out["publish_s"] = float(publisher.published), publisher.seconds
        if arrivals and started_writer:
            out["first"] = arrivals[0] - started_writer[0]
    return out


async def side_by_side(model: Any, runs: int) -> tuple[list[dict], list[dict]]:
    """`runs` pairs of runs, with and without drafts, alternating."""
    bus = broadcast_for("memory://")
    await bus.connect()
    try:
        for warm in (True, False):  # warm-up (imports, graph compile, connections)
            await one_run(model, bus, drafts=warm)
        on, off = [], []
        for _ in range(runs):
            on.append(await one_run(model, bus, drafts=True))
            off.append(await one_run(model, bus, drafts=False))
        return on, off
    finally:
        await bus.disconnect()


def _med(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    return statistics.median(values) if values else float("nan")


def report(title: str, on: list[dict], off: list[dict]) -> None:
    """Print the figures of one model."""
    wall_on, wall_off = _med(on, "wall"), _med(off, "wall")
    print_table(
        title,
        [
            ("figure (median)", "with drafts", "without"),
            ("run wall time (s)", f"{wall_on:.3f}", f"{wall_off:.3f}"),
            ("extra per run (s)", f"{wall_on - wall_off:+.3f}", ""),
            ("extra per run (%)", f"{100 * (wall_on / wall_off - 1):+.1f}", ""),
            (
                "CPU time of the process per run (s)",
                f"{_med(on, 'cpu'):.3f}",
                f"{_med(off, 'cpu'):.3f}",
            ),
            ("first DRAFT_DELTA after AGENT_STARTED (ms)", f"{1000 * _med(on, 'first'):.0f}", ""),
            ("deltas received per run", f"{_med(on, 'deltas'):.0f}", f"{_med(off, 'deltas'):.0f}"),
            ("bus messages per run", f"{_med(on, 'published'):.0f}", "0"),
            ("seconds publishing per run (ms)", f"{1000 * _med(on, 'publish_s'):.2f}", ""),
        ],
    )


async def main_async(args: argparse.Namespace) -> None:
    stub = create_stub(args.latency, token_seconds=args.token_seconds)
    async with serve(stub, free_port()) as host:
        model = bare_model(f"http://{host}/v1")
        on, off = await side_by_side(model, args.runs)
        report(
            f"stub model: {args.latency * 1000:.0f} ms to the first token, a ~4-character piece "
            f"every {args.token_seconds * 1000:.0f} ms; {args.runs} runs each",
            on,
            off,
        )
    if args.local:
        async with open_model(ModelConfig(provider="local")) as source:
            on, off = await side_by_side(source.factory(), 1)
        report("bundled SmolLM2-135M (llama.cpp), 1 run each", on, off)


def main() -> None:
    """Parse the arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--token-seconds", type=float, default=0.01)
    parser.add_argument("--local", action="store_true", help="also the bundled model, once")
    main_args = parser.parse_args()
    asyncio.run(main_async(main_args))


if __name__ == "__main__":
    main()
