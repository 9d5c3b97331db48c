"""P5 of issue 18: read latency on a large database, through the HTTP API of `postassist
serve --no-worker` (memory bus, stub model): `tasks(first: 50)` without and with a
`status` filter (COMPLETED, the most tasks; FAILED, few), `agentLogs(taskId, first: 100)`
and `task(id)` with the CLI's fields, one request at a time on a kept-alive connection
after 20 warm-up requests: p50 / p99 / max in ms against the targets p50 <= 5 ms and
p99 <= 20 ms. Next to them, "repository ms": the median, in this process, of the
repository calls `agents.runtime.task_reads.TaskReads` makes for the query (the SQL and
the ORM rows; the rest of the HTTP time is GraphQL, JSON and HTTP), also for a
non-admin's `tasks(first: 50)` (owner filter). Then SQLite's `EXPLAIN QUERY PLAN` of
each SELECT those calls send (caught by a `before_cursor_execute` listener), every SCAN
and TEMP B-TREE marked. Prints tables; asserts nothing.

The database holds `--tasks` tasks (default 20,000: 90% COMPLETED, 6% FAILED, 2% RUNNING,
2% PENDING, owner "local", one every 30 s) of `--events / --tasks` events each (default
1,000,000 in all: 50 per task, seq 1..50, last_seq 50), migrated as the service does
(`db.migrate.upgrade_to_head`) and filled with SQLAlchemy Core `insert(...)` executemany
(~50 s for 1M events). The SQLite file (~480 MB) is kept under `--cache DIR` (default: a
temporary directory) and reused by later runs with the same sizes, migrated to head
first; `--postgres` also fills a database of its own on 127.0.0.1:5432 (user postgres,
trust auth; VACUUM ANALYZE after the fill), measures it and drops it.

    python -m benchmarks.reads [--quick] [--cache DIR] [--events N] [--tasks N] [--postgres]

About 2 minutes with a cached file (`--postgres`: +2 minutes; a first fill: +1 minute);
`--quick` (200 requests per query instead of 1,000) about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import random
import re
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.teams.state import FINISH, LINKEDIN_CREATOR, META_SUPERVISOR, TEAMS
from benchmarks.harness import bench_env, print_table
from db import repository
from db.engine import create_engine, create_session_factory
from db.enums import EventKind, FailureCode, TaskStatus, WorkStatus
from db.events import Event
from db.migrate import upgrade_to_head
from db.models import AgentLog, Task
from db.outputs import RequestSource, ResearchNotes, VerificationReport
from db.snapshot import Teams
from graph.cli.client import TASK
from tests.processes import Service, stub_model

#: Bumped whenever the generated rows change, so an old cached file is not reused.
FILL_VERSION = 1
WARMUP = 20
TARGET_P50_MS, TARGET_P99_MS = 5.0, 20.0
TARGETS = f"sequential requests, targets p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
LIST = """query($s: TaskStatus) { tasks(first: 50, status: $s) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id kind status paperTitle progress currentTeam currentAgent
    approved lastSeq createdAt completedAt } } } }"""
LOGS = """query($id: ID!) { agentLogs(taskId: $id, first: 100) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { seq timestamp team agent kind message data progress status isTerminal } }
} }"""
#: label, GraphQL operation, variables of the n-th request (from the sampled task ids).
Case = tuple[str, str, Callable[[list[str], int], dict[str, Any]]]
CASES: list[Case] = [
    ("tasks(first: 50)", LIST, lambda ids, n: {}),
    ("tasks(first: 50, status: COMPLETED)", LIST, lambda ids, n: {"s": "COMPLETED"}),
    ("tasks(first: 50, status: FAILED)", LIST, lambda ids, n: {"s": "FAILED"}),
    ("agentLogs(taskId, first: 100)", LOGS, lambda ids, n: {"id": ids[n % len(ids)]}),
    ("task(id) (the CLI's fields)", TASK, lambda ids, n: {"id": ids[n % len(ids)]}),
]

STATUSES = {"COMPLETED": 90, "FAILED": 6, "RUNNING": 2, "PENDING": 2}
TITLES = [f"Paper {n}: Training Compute-Optimal Large Language Models" for n in range(40)]
CONTEXT = "Chinchilla has 70 billion parameters and was trained on 1.4 trillion tokens. " * 4
NOTES = ResearchNotes(
    summary=CONTEXT[:300],
    key_insights=[CONTEXT[:120]] * 3,
    metrics=["70 billion", "1.4 trillion"],
    sources=[RequestSource(title=TITLES[0], characters=len(CONTEXT))],
    source_note="from the request alone: no source was asked",
).model_dump(mode="json")
REPORTS = [
    VerificationReport(agent=agent, kind=kind, score=0.86, approved=True).model_dump(mode="json")
    for agent, kind in (("tech_verifier", "TECHNICAL"), ("style_checker", "STYLE"))
]
#: The task columns a COMPLETED / FAILED task has beyond the defaults.
RESULTS = {
    "COMPLETED": {"content": "Compute-optimal training sizes models anew. " * 25, "approved": True,
                  "hashtags": ["AI", "LLM"], "verification_reports": REPORTS},
    "FAILED": {"error": "the model did not answer in 300 s", "error_code": FailureCode.TIMEOUT},
}  # fmt: skip
SUPERVISOR = {team: f"{team.removesuffix('_team')}_supervisor" for team in TEAMS}
USAGE = {"purpose": "write", "input_tokens": 1200, "output_tokens": 180, "total_tokens": 1380}


def teams_snapshot(status: str, at: datetime) -> list[dict[str, Any]]:
    """A `Teams` JSON as a task of `status` has it: every team and agent COMPLETED, but
    the last agent ERROR (FAILED) or WORKING (RUNNING); all IDLE when PENDING."""
    teams = Teams.initial(TEAMS)
    last = {"FAILED": WorkStatus.ERROR, "RUNNING": WorkStatus.WORKING}.get(status)
    for n, team in enumerate(teams if status != "PENDING" else []):
        team.started_at = team.completed_at = at + timedelta(seconds=40 * n)
        team.status, team.progress = WorkStatus.COMPLETED, 1.0
        for agent in team.agents:
            agent.status, agent.progress, agent.activity = WorkStatus.COMPLETED, 1.0, "done"
            agent.updated_at = team.started_at
        team.finished_in_round = [agent.name for agent in team.agents]
    if last is not None:
        teams[-1].status, teams[-1].progress, teams[-1].completed_at = last, 0.5, None
        teams[-1].agents[-1].status, teams[-1].agents[-1].progress = last, 0.0
        teams[-1].finished_in_round.pop()
    return teams.dump()


def task_row(rng: random.Random, at: datetime, events: int) -> dict[str, Any]:
    """The columns of one `task` created at `at`, of a random status (`STATUSES`), with
    `last_seq = events`, the notes and results such a task has, 12 model calls."""
    status = rng.choices(list(STATUSES), weights=list(STATUSES.values()))[0]
    ran, ended = status != "PENDING", status in RESULTS
    task = Task(
        id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        paper_title=rng.choice(TITLES),
        additional_context=CONTEXT,
        status=TaskStatus(status),
        progress=1.0 if status == "COMPLETED" else 0.6,
        teams=teams_snapshot(status, at),
        last_seq=events,
        attempt=1,
        worker_id="worker-1" if ran else None,
        research_notes=NOTES if ran else None,
        llm_calls=12,
        input_tokens=12 * USAGE["input_tokens"],
        output_tokens=12 * USAGE["output_tokens"],
        total_tokens=12 * USAGE["total_tokens"],
        created_at=at,
        updated_at=at + timedelta(seconds=2 * events),
        started_at=at if ran else None,
        completed_at=at + timedelta(seconds=2 * events) if ended else None,
        **RESULTS.get(status, {}),
    )
    return task.model_dump()


def _agent(team: str, agent: str, calls: int) -> list[Event]:
    say = functools.partial(Event, team=team, agent=agent)
    call = [
        say(EventKind.LLM_CALL, "waiting for the model: write", data={"purpose": "write"}),
        say(EventKind.LLM_USAGE, "write: 1380 tokens", data=USAGE),
    ]
    return [
        _route(SUPERVISOR[team], agent, team),
        say(EventKind.AGENT_STARTED, "working"),
        say(EventKind.TOOL_CALL, "check", data={"tool": "check", "args": {"text": CONTEXT}}),
        say(EventKind.TOOL_RESULT, "check returned", data={"tool": "check", "result": USAGE}),
        *call * calls,
        say(EventKind.AGENT_FINISHED, "done"),
    ]


def _route(who: str, to: str, team: str | None = None) -> Event:
    options = {"next": to, "reason": "the plan", "options": [to, FINISH], "situation": CONTEXT}
    return Event(EventKind.ROUTING, f"{who} -> {to}: the plan", team, who, data=options)


@functools.cache
def script(count: int, status: str) -> tuple[dict[str, Any], ...]:
    """`count` `agent_log` rows (without task_id, seq, time) of a run, built by
    `Event.row`: each team routed to, started, its agents (routing, tool call and
    result, model calls) and finish; the writer calls the model as often as it takes
    to reach `count`. A COMPLETED or FAILED run ends with its TASK_STATUS event."""
    steps = [Event.task_status(TaskStatus.RUNNING)]
    for team, agents in TEAMS.items():
        steps += [_route(META_SUPERVISOR, team), Event(EventKind.TEAM_STARTED, "", team)]
        for agent in agents:
            steps += _agent(team, agent, 1 + max(0, count - 38) // 2 * (agent == LINKEDIN_CREATOR))
        steps += [_route(SUPERVISOR[team], FINISH, team), Event(EventKind.TEAM_FINISHED, "", team)]
    steps = [*steps, _route(META_SUPERVISOR, FINISH), _route(META_SUPERVISOR, FINISH)][:count]
    if status in RESULTS:
        steps[-1] = Event.task_status(TaskStatus(status))
    rows = [step.row("", seq, progress=seq / count) for seq, step in enumerate(steps, 1)]
    return tuple(row.model_dump(exclude={"id", "task_id", "seq", "created_at"}) for row in rows)


def event_rows(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The `agent_log` rows of `task` (`task_row`): seq 1..last_seq, 2 s apart."""
    at, task_id = task["created_at"], task["id"]
    return [
        {**row, "task_id": task_id, "seq": seq, "created_at": at + timedelta(seconds=2 * seq)}
        for seq, row in enumerate(script(task["last_seq"], task["status"]), start=1)
    ]


async def fill(url: str, tasks: int, per_task: int) -> float:
    """Migrate the empty database at `url` to head and insert `tasks` tasks of `per_task`
    events each, in batches of 500 tasks (one transaction each); returns seconds taken."""
    started = time.perf_counter()
    engine = create_engine(url)
    await upgrade_to_head(engine)
    rng, first = random.Random(18), datetime.now(UTC) - timedelta(seconds=30 * tasks)
    for start in range(0, tasks, 500):
        rows = [
            task_row(rng, first + timedelta(seconds=30 * n), per_task)
            for n in range(start, min(tasks, start + 500))
        ]
        async with engine.begin() as connection:
            if url.startswith("sqlite"):
                await connection.exec_driver_sql("PRAGMA cache_size=-400000")
            await connection.execute(insert(Task), rows)
            await connection.execute(insert(AgentLog), [e for r in rows for e in event_rows(r)])
    await engine.dispose()
    return time.perf_counter() - started


def cached_sqlite(cache: Path, tasks: int, per_task: int) -> tuple[Path, str]:
    """The filled SQLite file for these sizes under `cache` (filled now if missing) and
    a line saying how long the fill took (now, or when it was cached)."""
    path = cache / f"reads-v{FILL_VERSION}-{tasks}x{per_task}.db"
    note = path.with_suffix(".json")
    if path.exists() and note.exists():
        seconds = json.loads(note.read_text())["fill_seconds"]
        return path, f"cached {path} (its fill took {seconds:.1f} s)"
    partial = path.with_suffix(".partial")
    for stale in cache.glob(partial.name + "*"):
        stale.unlink()
    seconds = asyncio.run(fill(f"sqlite+aiosqlite:///{partial}", tasks, per_task))
    partial.rename(path)
    note.write_text(json.dumps({"fill_seconds": seconds}))
    return path, f"filled {path} in {seconds:.1f} s"


Reads = Callable[[AsyncSession, str], Awaitable[Any]]
Statements = dict[str, list[tuple[str, Any]]]


def _reads() -> dict[str, Reads]:
    """The repository calls `TaskReads` makes for each query (page size + 1, then the
    count), plus a non-admin's list (owner filter) for comparison."""

    def listing(**where: Any) -> Reads:
        task_filter = repository.TaskFilter(**where)

        async def run(session: AsyncSession, task_id: str) -> None:
            await repository.list_tasks(session=session, limit=51, where=task_filter)
            await repository.count_tasks(session=session, where=task_filter)

        return run

    async def logs(session: AsyncSession, task_id: str) -> None:
        await repository.get_task(session=session, task_id=task_id)
        await repository.list_agent_logs(session=session, task_id=task_id, limit=101)
        await repository.count_agent_logs(session=session, task_id=task_id)

    async def one(session: AsyncSession, task_id: str) -> None:
        await repository.get_task(session=session, task_id=task_id)

    return {
        CASES[0][0]: listing(),
        CASES[1][0]: listing(status=TaskStatus.COMPLETED),
        CASES[2][0]: listing(status=TaskStatus.FAILED),
        CASES[3][0]: logs,
        CASES[4][0]: one,
        "tasks(first: 50) of a non-admin key": listing(owner="local"),
    }


async def in_process(url: str, runs: int) -> tuple[list[str], Statements, dict[str, float]]:
    """In this process, on `url`: 500 random task ids; the SELECTs (statement,
    parameters) each read of `_reads()` sends, caught by a `before_cursor_execute`
    listener; the median ms of `runs` runs of each read (after 5 more). Migrates the
    database to head first, as the service does when it starts."""
    engine = create_engine(url)
    await upgrade_to_head(engine)
    captured: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    factory = create_session_factory(engine)
    async with factory() as session:
        query = select(Task.id).order_by(func.random()).limit(500)
        ids = list((await session.scalars(query)).all())
    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    statements: Statements = {}
    medians: dict[str, float] = {}
    for label, read in _reads().items():
        times = []
        for n in range(5 + runs):
            captured.clear()
            started = time.perf_counter()
            async with factory() as session:
                await read(session, ids[n % len(ids)])
            times.append((time.perf_counter() - started) * 1000)
        statements[label], medians[label] = list(captured), statistics.median(times[5:])
    await engine.dispose()
    return ids, statements, medians


def print_plans(path: Path, statements: Statements) -> None:
    """SQLite's EXPLAIN QUERY PLAN of each captured SELECT; `!!` marks a SCAN (full table
    or index scan) or a TEMP B-TREE (a sort no index serves)."""
    print("\nEXPLAIN QUERY PLAN (SQLite); !! = SCAN or TEMP B-TREE")
    with sqlite3.connect(path) as connection:
        for label, selects in statements.items():
            print(f"  {label}")
            for statement, parameters in selects:
                sql = re.sub(
                    r"^SELECT (\S+?)\.\S+, .*? FROM",
                    r"SELECT \1.* FROM",
                    " ".join(statement.split()),
                )
                print(f"    {sql[:150]}{'...' if len(sql) > 150 else ''}")
                for *_, detail in connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters):
                    flag = "!!" if "SCAN" in detail or "TEMP B-TREE" in detail else "  "
                    print(f"      {flag} {detail}")


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` 0..1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(url: str, ids: list[str], requests: int) -> dict[str, list[float]]:
    """Milliseconds of `requests` sequential POSTs of each case (after `WARMUP` more) on
    one kept-alive connection; raises RuntimeError on an HTTP or GraphQL error."""
    times: dict[str, list[float]] = {}
    with httpx.Client(timeout=30) as client:
        for label, query, variables in CASES:
            times[label] = []
            for n in range(WARMUP + requests):
                body = {"query": query, "variables": variables(ids, n)}
                started = time.perf_counter()
                response = client.post(url, json=body)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200 or response.json().get("errors"):
                    raise RuntimeError(f"{label}: {response.text[:300]}")
                if n >= WARMUP:
                    times[label].append(elapsed)
    return times


def table(http: dict[str, list[float]], repository_ms: dict[str, float]) -> list[tuple[str, ...]]:
    """Rows of `print_table`: per query the HTTP p50 / p99 / max, the in-process median of
    its repository calls and whether it meets both targets."""
    rows = [("query", "n", "p50 ms", "p99 ms", "max ms", "repository ms", "target")]
    for label, in_process_ms in repository_ms.items():
        times = http.get(label)
        if not times:
            rows.append((label, "-", "-", "-", "-", f"{in_process_ms:.2f}", "-"))
            continue
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        ok = "ok" if p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS else "MISSED"
        figures = (f"{p50:.2f}", f"{p99:.2f}", f"{max(times):.2f}", f"{in_process_ms:.2f}")
        rows.append((label, str(len(times)), *figures, ok))
    return rows


def serve_and_measure(
    database_url: str, model_url: str, workdir: Path, args: argparse.Namespace
) -> tuple[list[tuple[str, ...]], Statements]:
    """The in-process reads, then `postassist serve --no-worker` on `database_url` for one
    `measure`; returns the table of both, and prints the plans on SQLite."""
    ids, statements, repository_ms = asyncio.run(in_process(database_url, args.runs))
    env = bench_env(database_url, model_url)
    service = Service(env, workdir / f"serve-{uuid.uuid4().hex[:6]}.log", worker=False)
    try:
        http = measure(service.url, ids, args.requests)
    finally:
        service.proc.stop()
    return table(http, repository_ms), statements


async def _admin(sql: str, database: str = "postgres") -> None:
    import asyncpg

    connection = await asyncio.wait_for(asyncpg.connect(f"{POSTGRES}/{database}"), 5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres(args: argparse.Namespace, model_url: str, workdir: Path, per_task: int) -> None:
    """Fill a database of its own on 127.0.0.1:5432 (then VACUUM ANALYZE, as autovacuum
    would soon after), measure it, drop it."""
    name = f"postassist_bench_reads_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        seconds = asyncio.run(fill(url, args.tasks, per_task))
        asyncio.run(_admin("VACUUM ANALYZE", name))
        rows, _ = serve_and_measure(url, model_url, workdir, args)
        print_table(f"PostgreSQL {name} (filled in {seconds:.1f} s): {TARGETS}", rows)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 requests per query")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=None, help="keep the SQLite file here")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL on :5432")
    args = parser.parse_args()
    args.requests, args.runs = (200, 20) if args.quick else (1000, 50)
    per_task = max(1, args.events // args.tasks)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cache = args.cache or workdir
        cache.mkdir(parents=True, exist_ok=True)
        path, note = cached_sqlite(cache, args.tasks, per_task)
        print(f"{args.tasks:,} tasks x {per_task} events = {args.tasks * per_task:,}: {note}")
        with stub_model(workdir, latency=0) as model_url:
            rows, statements = serve_and_measure(
                f"sqlite+aiosqlite:///{path}", model_url, workdir, args
            )
            print_table(f"SQLite, {path.stat().st_size / 1e6:.0f} MB: {TARGETS}", rows)
            print_plans(path, statements)
            if args.postgres:
                postgres(args, model_url, workdir, per_task)


if __name__ == "__main__":
    main()
