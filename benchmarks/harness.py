"""Shared pieces of the benchmarks: the bare in-process graph run, `postassist` processes
with production poll intervals, one timed task through the API, and table printing."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.llm.chat import ModelConfig, build_chat_model
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph
from agents.teams.nodes import RunContext
from agents.teams.state import initial_state
from db.models import PostRequest
from graph.cli.client import TASK_PROGRESS, GraphQLClient
from tests.processes import GENERATE, INPUT, Service, service_env

REQUEST = PostRequest.model_validate(
    {"paper_title": INPUT["paperTitle"], "additional_context": INPUT["additionalContext"]}
)
CANCEL = "mutation($id: ID!) { cancelTask(id: $id) { id status } }"
#: tests/processes.service_env shortens these for the tests; the benchmarks measure the
#: defaults a deployment gets.
DEFAULT_POLLS = {"QUEUE_POLL_SECONDS": "0.1", "HEARTBEAT_SECONDS": "2", "FOLLOW_POLL_SECONDS": "5"}


def bare_model(model_url: str) -> Any:
    """The chat model of the bare runs: the stub, no retries."""
    return build_chat_model(
        ModelConfig(provider="openai", base_url=model_url, api_key="stub", max_retries=0)
    )


async def bare_run(model: Any, checkpointer: Any = None) -> float:
    """Seconds for one `build_graph().ainvoke(...)` in this process (with `checkpointer`:
    durability="sync" on a fresh thread_id)."""
    config: dict[str, Any] = {"recursion_limit": RECURSION_LIMIT}
    kwargs: dict[str, Any] = {}
    if checkpointer is not None:
        config["configurable"] = {"thread_id": uuid.uuid4().hex}
        kwargs["durability"] = "sync"
    started = time.perf_counter()
    await build_graph(checkpointer=checkpointer).ainvoke(
        initial_state(REQUEST, max_revisions=2),
        config,  # type: ignore[arg-type]
        context=RunContext(model=model),
        **kwargs,
    )
    return time.perf_counter() - started


async def bare_many(model: Any, n: int) -> float:
    """Wall seconds for `n` concurrent bare runs in this process."""
    started = time.perf_counter()
    await asyncio.gather(*(bare_run(model) for _ in range(n)))
    return time.perf_counter() - started


def bench_env(database_url: str, model_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked `postassist` process: the stub model, the memory
    bus and the default poll intervals (`extra` env vars override)."""
    env = service_env(database_url, model_url)
    env.update(DEFAULT_POLLS, BROADCAST_URL="memory://")
    env.update(extra)
    return env


def start_service(workdir: Path, name: str, model_url: str, **extra: str) -> Service:
    """`postassist serve` on SQLite `<workdir>/<name>.db` (see `bench_env`)."""
    env = bench_env(f"sqlite+aiosqlite:///{workdir / name}.db", model_url, **extra)
    return Service(env, workdir / f"{name}.log")


def stamp(event: dict[str, Any]) -> float:
    """The event's server timestamp as epoch seconds (same host clock as `time.time()`)."""
    return datetime.fromisoformat(event["timestamp"]).timestamp()


@dataclass
class Timed:
    """One task through the API, all in epoch seconds: mutation sent and returned, the
    first event a subscriber got, the RUNNING and terminal events' server stamps, the
    terminal event's arrival and its status."""

    sent: float
    returned: float
    first_event: float = 0.0
    running: float = 0.0
    finished: float = 0.0
    done: float = 0.0
    status: str = ""

    @property
    def total(self) -> float:
        """Mutation sent -> terminal event received."""
        return self.done - self.sent


async def timed_task(client: GraphQLClient, on_event: Any = None) -> tuple[str, Timed]:
    """Start a generation and follow its `taskProgress` subscription (WebSocket) to the
    terminal event. `on_event(task_id, event)` is awaited for each event."""
    sent = time.time()
    task_id = (await client.execute(GENERATE, {"input": INPUT}))["generatePost"]["id"]
    timed = Timed(sent=sent, returned=time.time())
    async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
        event = data["taskProgress"]
        timed.first_event = timed.first_event or time.time()
        if event["kind"] == "TASK_STATUS" and event["status"] == "RUNNING":
            timed.running = stamp(event)
        if on_event is not None:
            await on_event(task_id, event)
        if event["isTerminal"]:
            timed.done, timed.status = time.time(), event["status"]
            timed.finished = stamp(event)
    return task_id, timed


async def timed_many(client: GraphQLClient, n: int, lags: list[float] | None = None) -> float:
    """Wall seconds for `n` generations started at once, each followed to COMPLETED;
    with `lags`, each event's delay from its server stamp to its arrival (seconds) is
    appended to it."""

    async def lag(_task_id: str, event: dict[str, Any]) -> None:
        if lags is not None:
            lags.append(time.time() - stamp(event))

    started = time.time()
    results = await asyncio.gather(*(timed_task(client, on_event=lag) for _ in range(n)))
    bad = [t.status for _, t in results if t.status != "COMPLETED"]
    assert not bad, bad
    return time.time() - started


def median(values: list[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    """A compact, aligned text table; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for n, row in enumerate(rows):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
