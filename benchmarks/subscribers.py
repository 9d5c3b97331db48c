"""P4 of issue 18: many graphql-transport-ws subscribers on ONE `postassist serve`
(SQLite, memory bus, its own worker) on the stub model. Prints tables; asserts nothing.

Idle: the stub answers nothing (600 s), so the tasks stay RUNNING (at most 64 at once:
WORKER_CONCURRENCY's cap; the rest wait PENDING). C connections are opened (50 at a
time), then S `taskProgress(afterSeq: 0)` on each (spread over the tasks; each batch of
50 connections waits for its replays), then D connections with one `taskUpdates` each.
Server RSS (/proc VmRSS) after each step over the count it added; server CPU over 10 s.

Live: the stub is restarted answering in 50 ms (a call already waiting keeps the latency
it started with, so the stub is killed; the service sends each waiting call again once
the model is back) and every task runs to its end. Each event's arrival minus its server
`timestamp` (same clock) is its commit-to-client latency; each subscription's seqs are
checked against the task's stored events (lost, repeated), each dashboard's status
changes against the stored TASK_STATUS events after the idle snapshot.

The load generator is this one process (one asyncio loop on `websockets`); its CPU is
printed: near 100% would mean the latencies are its own.

Usage: `python -m benchmarks.subscribers [--quick] [--subscriptions N] [--tasks T]
[--dashboards D] [--per-connection S] [--no-deflate] [--profile DIR]` (~80 s quick).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from agents.llm.local_server import free_port
from benchmarks.harness import print_table, stamp, start_service
from graph.cli.client import TASK_PROGRESS, websocket_url
from tests.processes import Proc, stub_report, wait_http

UPDATES = "subscription { taskUpdates { id status progress currentAgent lastSeq } }"
WORKER_CAP = 64  # WORKER_CONCURRENCY's maximum (graph/settings/runtime.py)
BATCH = 50  # connections opened (and subscribed) at once
IDLE_SECONDS = 10.0
STALL_SECONDS = 60.0  # the live phase ends when no message arrived for this long


@dataclass
class Plan:
    """`subscriptions` taskProgress over `tasks`, `per_connection` on each connection,
    and `dashboards` connections with one taskUpdates each."""

    subscriptions: int
    tasks: int
    dashboards: int
    per_connection: int
    deflate: bool = True

    @property
    def connections(self) -> int:
        """taskProgress connections (the last one may carry fewer)."""
        return -(-self.subscriptions // self.per_connection)


@dataclass
class Sub:
    """One subscription: its task (None: taskUpdates) and what arrived, as
    `(seq, arrival, timestamp)` (taskProgress) or `(task id, status, arrival)`."""

    task_id: str | None
    got: list[tuple] = field(default_factory=list)
    done: bool = False
    error: str | None = None


class Client:
    """One graphql-transport-ws connection and its subscriptions by operation id."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.subs, self.closed = ws, {}, None  # type: ignore[var-annotated]
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, deflate: bool) -> Client:
        """Connect, send `connection_init`, wait for `connection_ack`."""
        ws = await websockets.connect(
            websocket_url(url), subprotocols=["graphql-transport-ws"], ping_interval=None,
            open_timeout=120, max_size=None, compression="deflate" if deflate else None,
        )  # fmt: skip
        await ws.send('{"type":"connection_init","payload":{}}')
        while (kind := json.loads(await ws.recv())["type"]) != "connection_ack":
            assert kind == "ping", kind
            await ws.send('{"type":"pong"}')
        return cls(ws)

    async def subscribe(self, sub: Sub) -> None:
        """Send one `subscribe`: taskProgress after seq 0, or taskUpdates."""
        op_id = str(len(self.subs) + 1)
        self.subs[op_id] = sub
        query, variables = (UPDATES, {}) if sub.task_id is None else (
            TASK_PROGRESS, {"taskId": sub.task_id, "afterSeq": 0})  # fmt: skip
        payload = {"query": query, "variables": variables}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now, message = time.time(), json.loads(raw)
                kind, sub = message["type"], self.subs.get(message.get("id"))
                if kind == "next" and "errors" in message["payload"]:
                    sub.error = str(message["payload"]["errors"])[:160]
                elif kind == "next" and sub.task_id is None:
                    t = message["payload"]["data"]["taskUpdates"]
                    sub.got.append((t["id"], t["status"], now))
                elif kind == "next":
                    e = message["payload"]["data"]["taskProgress"]
                    sub.got.append((e["seq"], now, e["timestamp"]))
                elif kind == "complete":
                    sub.done = True
                elif kind == "error":
                    sub.error = str(message["payload"])[:160]
                elif kind == "ping":
                    await self.ws.send('{"type":"pong"}')
            self.closed = "closed by the server"
        except websockets.ConnectionClosed as exc:
            self.closed = str(exc)[:160]


async def open_clients(url: str, n: int, deflate: bool) -> list[Client]:
    """`n` connections, `BATCH` at a time (the accept backlog stays short)."""
    clients: list[Client] = []
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        clients += await asyncio.gather(*(Client.open(url, deflate) for _ in range(count)))
    return clients


async def until(check: Any, seconds: float, step: float = 0.1) -> bool:
    """Poll `check()` every `step` s until it is true (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def until_stalled(check: Any, subs: list[Sub], stall: float = STALL_SECONDS) -> bool:
    """Poll `check()` until it is true (True), or nothing arrived on `subs` for `stall` s
    or 30 minutes passed (False)."""
    seen, quiet_since = -1, time.monotonic()
    deadline = quiet_since + 1800
    while not check():
        if (count := sum(len(s.got) for s in subs)) != seen:
            seen, quiet_since = count, time.monotonic()
        elif (time.monotonic() - quiet_since > stall and subs) or time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True


class Server:
    """The service's process (its /proc figures) and its stub model, which `release`
    restarts on the same port with a short latency."""

    def __init__(self, workdir: Path, plan: Plan) -> None:
        self.workdir, self.port = workdir, free_port()
        self.model_url = f"http://127.0.0.1:{self.port}/v1"
        self.stub = self._stub(600.0)
        try:
            self.service = self._service(workdir, plan)
        except BaseException:
            self.stub.stop()
            raise
        self.pid = self.service.proc.process.pid

    def _service(self, workdir: Path, plan: Plan) -> Any:
        return start_service(
            workdir, "subscribers", self.model_url,
            MAX_CONCURRENT_GENERATIONS=str(plan.tasks),
            WORKER_CONCURRENCY=str(min(plan.tasks, WORKER_CAP)),
            WS_MAX_CONNECTIONS_LOCAL=str(min(10_000, plan.connections + plan.dashboards + 10)),
            WS_MAX_SUBSCRIPTIONS=str(plan.per_connection),
            # a call waiting through a long idle phase must not time out (120 s default)
            LLM_TIMEOUT_SECONDS="1800", GENERATION_TIMEOUT_SECONDS="3600",
        )  # fmt: skip

    def _stub(self, latency: float) -> Proc:
        args = [sys.executable, "-m", "tests.stub_model", "--port", str(self.port)]
        proc = Proc([*args, "--latency", str(latency)], dict(os.environ), self.workdir / "stub.log")
        wait_http(f"{self.model_url}/models", proc)
        return proc

    def release(self, latency: float = 0.05) -> None:
        """Kill the stub (its waiting calls break) and start it again at `latency` s."""
        self.stub.kill()
        self.stub = self._stub(latency)

    def close(self) -> None:
        """Stop the service, then the stub."""
        self.service.proc.stop()
        self.stub.stop()

    def status(self, name: str = "VmRSS") -> int:
        """A number of /proc/<pid>/status: `VmRSS` (KiB), `Threads`."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
        return 0

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def problems(self) -> Counter[str]:
        """The server log's WARNING / ERROR lines (their first 120 characters), counted."""
        lines = self.service.proc.log.read_text(errors="replace").splitlines()
        return Counter(x[:120] for x in lines if x.startswith(("WARNING", "ERROR", "CRITICAL")))

    def start_tasks(self, n: int) -> list[str]:
        """`n` generations; returns once the running ones each wait on a model call."""
        ids = [self.service.generate() for _ in range(n)]
        deadline = time.monotonic() + 120
        while stub_report(self.model_url)["count"] < min(n, WORKER_CAP):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        return ids

    def ended(self) -> bool:
        """Whether the newest 100 tasks are terminal (HTTP; used with no subscriber)."""
        tasks = self.service.gql("{ tasks(first: 100) { edges { node { status } } } }")
        statuses = {e["node"]["status"] for e in tasks["tasks"]["edges"]}
        return statuses <= {"COMPLETED", "FAILED", "CANCELLED"}

    def last_seqs(self, ids: list[str]) -> dict[str, int]:
        """Each task's `lastSeq` now."""
        return {task_id: self.service.task(task_id)["lastSeq"] for task_id in ids}


async def cpu_share(server: Server, seconds: float) -> tuple[float, float]:
    """Server and load-generator CPU over `seconds`, each in % of one core."""
    server0, client0, wall0 = server.cpu(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    return (server.cpu() - server0) / wall * 100, (time.process_time() - client0) / wall * 100


def profile(pid: int, out: Path, seconds: int) -> subprocess.Popen:
    """`py-spy record -f raw` of `pid` for `seconds` into `out`, in the background."""
    spy = str(Path(sys.executable).parent / "py-spy")
    args = [spy, "record", "-p", str(pid), "-d", str(seconds), "-f", "raw", "-o", str(out)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


async def subscribe_all(clients: list[Client], plan: Plan, seqs: dict[str, int]) -> None:
    """`plan.per_connection` taskProgress on each client, the k-th on task k mod T; each
    batch of `BATCH` clients waits until its replays arrived."""
    ids, k = list(seqs), 0
    for start in range(0, len(clients), BATCH):
        batch: list[Sub] = []
        for client in clients[start : start + BATCH]:
            for _ in range(min(plan.per_connection, plan.subscriptions - k)):
                batch.append(Sub(ids[k % len(ids)]))
                await client.subscribe(batch[-1])
                k += 1
        await until(lambda b=batch: all(len(s.got) >= seqs[s.task_id] or s.error for s in b), 120)


async def idle_phase(server: Server, plan: Plan, ids: list[str], out: dict) -> list[Client]:
    """Open and subscribe everything; RSS after each step and the idle CPU (into `out`)."""
    url, seqs = server.service.url, server.last_seqs(ids)
    out["rss0"], out["threads0"] = server.status(), server.status("Threads")
    out["cpu_none"] = await cpu_share(server, 5.0)
    started = time.monotonic()
    clients = await open_clients(url, plan.connections, plan.deflate)
    out["open_s"] = time.monotonic() - started
    await asyncio.sleep(2.0)
    out["rss_conn"], started = server.status(), time.monotonic()
    await subscribe_all(clients, plan, seqs)
    out["subscribe_s"] = time.monotonic() - started
    await asyncio.sleep(2.0)
    out["rss_subs"] = server.status()
    dashboards = await open_clients(url, plan.dashboards, plan.deflate)
    for client in dashboards:
        await client.subscribe(Sub(None))
    await asyncio.sleep(3.0)
    out["rss_dash"], out["threads"] = server.status(), server.status("Threads")
    out["cpu_idle"] = await cpu_share(server, IDLE_SECONDS)
    out["quiet"], out["snapshot"] = server.last_seqs(ids) == seqs, seqs
    return clients + dashboards


async def live_phase(server: Server, clients: list[Client], ids: list[str], out: dict) -> None:
    """Release the model and wait until every subscription completed (into `out`)."""
    subs = [s for c in clients for s in c.subs.values()]
    progress = [s for s in subs if s.task_id is not None]
    server0, client0, started = server.cpu(), time.process_time(), time.monotonic()
    await asyncio.to_thread(server.release)
    check = (lambda: all(s.done or s.error for s in progress)) if progress else server.ended
    out["finished"] = await until_stalled(check, subs)
    wall = out["live_s"] = time.monotonic() - started
    out["cpu_live"] = ((server.cpu() - server0) / wall * 100,
                       (time.process_time() - client0) / wall * 100)  # fmt: skip
    out["events"] = await asyncio.to_thread(lambda: {t: server.service.events(t) for t in ids})
    expected = sum(len(_changes(out["events"][t], out["snapshot"][t])) for t in ids)
    dashboards = [s for s in subs if s.task_id is None]
    await until(lambda: all(len(s.got) >= expected for s in dashboards), 15)
    out["subs"], out["closed"] = subs, Counter(c.closed for c in clients if c.closed)


def _changes(events: list[dict], after: int) -> list[dict]:
    return [e for e in events if e["kind"] == "TASK_STATUS" and e["seq"] > after]


def tally(out: dict) -> dict[str, Any]:
    """Latencies (ms) of the live events; lost / repeated / not completed counts."""
    events, snapshot = out["events"], out["snapshot"]
    stamps = {(t, e["seq"]): stamp(e) for t, evs in events.items() for e in evs}
    stored = {t: {e["seq"] for e in evs} for t, evs in events.items()}
    changes = [(t, e) for t, evs in events.items() for e in _changes(evs, snapshot[t])]
    want = Counter((t, e["status"]) for t, e in changes)
    changed = {(t, e["status"]): stamps[t, e["seq"]] for t, e in changes}
    res: dict[str, Any] = dict.fromkeys(("lost", "repeated", "unfinished", "dash_lost",
                                         "dash_repeated", "received"), 0)  # fmt: skip
    res.update(lat=[], dash_lat=[], errors=Counter(s.error for s in out["subs"] if s.error))
    for sub in out["subs"]:
        res["received"] += len(sub.got)
        if sub.task_id is None:
            got = Counter(g[:2] for g in sub.got)
            res["dash_lost"] += sum((want - got).values())
            res["dash_repeated"] += sum((got - want).values())
            res["dash_lat"] += [(g[2] - changed[g[:2]]) * 1000 for g in sub.got if g[:2] in changed]
            continue
        t, seqs = sub.task_id, [g[0] for g in sub.got]
        res["lost"] += len(stored[t] - set(seqs))
        res["repeated"] += len(seqs) - len(set(seqs))
        res["unfinished"] += not sub.done
        res["lat"] += [(g[1] - stamps[t, g[0]]) * 1000 for g in sub.got if g[0] > snapshot[t]]
    return res


def _pcts(values: list[float]) -> str:
    v = sorted(values) or [0.0]
    return " / ".join(f"{v[min(len(v) - 1, int(len(v) * q))]:.0f}" for q in (0.5, 0.99, 1))


def report(plan: Plan, out: dict, res: dict) -> None:
    """Print the idle and the live tables, then what went wrong."""
    n, d = plan.subscriptions, plan.dashboards
    kib = lambda a, b, k: f"{(out[b] - out[a]) / k:.1f}" if k else "-"  # noqa: E731
    print_table(
        f"idle: {n} taskProgress on {plan.connections} connections x {plan.per_connection}"
        f" over {plan.tasks} tasks ({min(plan.tasks, WORKER_CAP)} RUNNING) + {d} taskUpdates"
        f" connections; permessage-deflate {'on' if plan.deflate else 'off'}",
        [("what", "figure"),
         ("server RSS before / all subscribed / after the run, MiB",
          f"{out['rss0'] / 1024:.0f} / {out['rss_dash'] / 1024:.0f} / {out['rss_end'] / 1024:.0f}"),
         ("server threads before / all subscribed", f"{out['threads0']} / {out['threads']}"),
         ("KiB per connection (connection_init only)", kib("rss0", "rss_conn", plan.connections)),
         ("KiB per taskProgress subscription, on top", kib("rss_conn", "rss_subs", n)),
         ("KiB per taskUpdates connection + subscription", kib("rss_subs", "rss_dash", d)),
         ("KiB per idle subscription, all in (target <= 20)", kib("rss0", "rss_dash", n + d)),
         ("server CPU % of a core, idle, no subscriber", f"{out['cpu_none'][0]:.1f}"),
         (f"server CPU %, idle, all subscribed, {IDLE_SECONDS:.0f} s (target < 5)",
          f"{out['cpu_idle'][0]:.1f}"),
         ("load generator CPU %, idle", f"{out['cpu_idle'][1]:.1f}"),
         ("s to open the connections / to subscribe + replay",
          f"{out['open_s']:.1f} / {out['subscribe_s']:.1f}"),
         ("no event while idle", str(out["quiet"]))],
    )  # fmt: skip
    ends = Counter(next((e["status"] for e in reversed(evs) if e["kind"] == "TASK_STATUS"), "-")
                   for evs in out["events"].values())  # fmt: skip
    print_table(
        f"live: stub at 50 ms until every task ended (or {STALL_SECONDS:.0f} s without a message)",
        [("what", "figure"),
         ("wall s / every taskProgress completed", f"{out['live_s']:.1f} / {out['finished']}"),
         ("tasks ended", " ".join(f"{k}={v}" for k, v in sorted(ends.items()))),
         ("server / load generator CPU % of a core",
          f"{out['cpu_live'][0]:.0f} / {out['cpu_live'][1]:.0f}"),
         ("messages received, replays included", str(res["received"])),
         (f"taskProgress live events ({len(res['lat'])}): commit->client ms p50 / p99 / max",
          _pcts(res["lat"])),
         (f"taskUpdates changes ({len(res['dash_lat'])}): ms p50 / p99 / max",
          _pcts(res["dash_lat"])),
         ("taskProgress lost / repeated / not completed",
          f"{res['lost']} / {res['repeated']} / {res['unfinished']}"),
         ("taskUpdates missing at the end / repeated",
          f"{res['dash_lost']} / {res['dash_repeated']}"),
         ("subscription errors / connections closed",
          f"{sum(res['errors'].values())} / {sum(out['closed'].values())}")],
    )  # fmt: skip
    for what, counts in (("error", res["errors"]), ("closed", out["closed"]),
                         ("server log", out["problems"])):  # fmt: skip
        for text, count in counts.most_common(4):
            print(f"  {what} x{count}: {text}")


async def measure(workdir: Path, plan: Plan, profile_dir: Path | None) -> None:
    """Start the stub and the service, run both phases, print the tables."""
    server = await asyncio.to_thread(Server, workdir, plan)
    try:
        ids = await asyncio.to_thread(server.start_tasks, plan.tasks)
        out: dict[str, Any] = {}
        clients = await idle_phase(server, plan, ids, out)
        if profile_dir is not None:
            await asyncio.to_thread(profile(server.pid, profile_dir / "idle.txt", 10).wait)
            spy = profile(server.pid, profile_dir / "live.txt", 30)
        await live_phase(server, clients, ids, out)
        await asyncio.gather(*(c.ws.close() for c in clients))
        await asyncio.sleep(3.0)
        out["rss_end"], out["problems"] = server.status(), server.problems()
        if profile_dir is not None:
            await asyncio.to_thread(spy.wait)
    finally:
        await asyncio.to_thread(server.close)
    report(plan, out, tally(out))


def main() -> None:
    """Parse the options, raise the open-file limit, run in a temporary directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 over 20 tasks + 100")
    parser.add_argument("--subscriptions", type=int, help="taskProgress (default 10,000)")
    parser.add_argument("--tasks", type=int, help="tasks (default 100)")
    parser.add_argument("--dashboards", type=int, help="taskUpdates (default 1,000)")
    parser.add_argument("--per-connection", type=int, default=10, help="taskProgress each")
    parser.add_argument("--no-deflate", action="store_true", help="no permessage-deflate")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles (idle, live) here")
    args = parser.parse_args()
    n, tasks, dashboards = (1_000, 20, 100) if args.quick else (10_000, 100, 1_000)
    pick = lambda given, default: default if given is None else given  # noqa: E731
    plan = Plan(pick(args.subscriptions, n), pick(args.tasks, tasks),
                pick(args.dashboards, dashboards),
                args.per_connection, deflate=not args.no_deflate)  # fmt: skip
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the server inherits it
    need = 2 * (plan.connections + plan.dashboards) + 1000
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, need)), hard))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the children are stopped
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="postassist-bench-") as tmp:
        asyncio.run(measure(Path(tmp), plan, args.profile))
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
