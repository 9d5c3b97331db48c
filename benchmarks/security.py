"""The security limits of a real `postassist serve` (SQLite, memory bus, stub model) over
HTTP on 127.0.0.1: how fast hostile requests are refused and with which error (1,000
aliases; a 5 MB body, declared and chunked); a cheap query's latency from another client
while they flood the server (from another process: 4 threads sending the 5 MB body, 4 the
aliases), against idle; what authentication adds per request (local mode, API key cached
or read each time, HS256 JWT); the mutation rate limiter's cost per call (memory, Redis).
Prints tables; asserts nothing.

Usage: `python -m benchmarks.security [--quick]` (~50 s; `--quick` ~25 s). Redis on
127.0.0.1:6379 is optional (skipped with a note).

`--stalls`: the attacks of issue 13 ("No client can stall it"), each as the issue
describes it, against `postassist serve --no-worker` of one or two source trees, one
server at a time, this venv's interpreter with the tree first on PYTHONPATH and as cwd.
Per attack: the STALL, the worst latency of `{ __typename }` from a second client (a
spawned process with its own kept-alive connection, probing every 10 ms from before the
attack to its end, at least 1 s), against idle; and what the attacker got (codes, close
codes, sizes, seconds, tracebacks logged). Rows 5, 6, 7, 9, 10, 11, 12 and two of 13 are
refusals, not timed (stall `-`). Servers: API keys alice and bob and an RSA JWT key
(rows 1, 4, 10; MAX_QUEUED_PER_PRINCIPAL lifted for row 4's 100 PENDING tasks), local
mode at LOG_LEVEL=info (2, 3, 6-9, 11, 12, 13's slow connections), keys with the default
MAX_QUEUED_PER_PRINCIPAL (13's queue and unknown keys), local mode with CORS_ORIGINS=* (5).
Scaled down from the issue: row 4's concurrent queries are 3, not 6; row 8's nested JSON
is 100,000 deep (200 KB, under the 256 KiB WS_MAX_SIZE so that it reaches the parser).
Payloads are built in memory; nothing is stored.

    git worktree add /tmp/before 0f7d389      # the code before issue 13, no install
    python -m benchmarks.security --stalls --before /tmp/before   # ~4 minutes
    python -m benchmarks.security --stalls --rows 1,4             # this tree only, rows 1, 4

`--after DIR` attacks another tree instead of this one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agents.llm.local_server import free_port
from benchmarks.harness import bench_env, median, print_table, start_service
from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.security.rate_limits import MutationRateLimiter, limiter_storage
from tests.processes import Proc, Service, console_script, stub_model

CHEAP = "{ teams { name } }"
COUNT = "{ tasks(first: 1) { totalCount } }"
ALIAS = " ".join(f"a{i}: tasks(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(1000))
ALIAS_BODY = json.dumps({"query": "{ " + ALIAS + " }"}).encode()
HUGE_BODY = json.dumps({"query": CHEAP + " " * 5_000_000}).encode()
JSON = {"content-type": "application/json"}
#: (label, body, sent chunked) of each request timed as it is refused.
REFUSED = [
    (f"1,000 aliases of tasks(first: 100) ({len(ALIAS_BODY) // 1024} KB)", ALIAS_BODY, False),
    ("5 MB body, Content-Length", HUGE_BODY, False),
    ("5 MB body, chunked", HUGE_BODY, True),
]
JWT_ENV = {
    "JWT_ISSUER": "https://id.example.com/",
    "JWT_AUDIENCE": "postassist",
    "JWT_SECRET": "bench-secret-bench-secret-32-bytes",
}
REDIS_URL = "redis://127.0.0.1:6379"


@dataclass
class Plan:
    """Repetitions per measurement."""

    tries: int  # timed refusals of each kind
    flood: float  # seconds of flood, and of idle probing
    requests: int  # sequential requests per authentication mode
    hits: int  # rate limiter calls per storage


FULL = Plan(tries=20, flood=5.0, requests=300, hits=20_000)
QUICK = Plan(tries=5, flood=2.0, requests=60, hits=2_000)


def _ms(values: list[float], scale: float = 1000) -> tuple[str, str, str]:
    """Median, p95 and max of `values` (seconds) in ms (`scale=1e6`: in us)."""
    p95 = statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else 0
    median_, p95, most = (v * scale for v in (median(values), p95, max(values)))
    return f"{median_:.1f}", f"{p95:.1f}", f"{most:.1f}"


def answer(response: httpx.Response) -> str:
    """`<HTTP status> <extensions.code> [(extensions.limit)]` of the first error, or `ok`."""
    errors = response.json().get("errors")
    if not errors:
        return f"{response.status_code} ok"
    extensions = errors[0].get("extensions") or {}
    limit = f" ({extensions['limit']})" if "limit" in extensions else ""
    return f"{response.status_code} {extensions.get('code')}{limit}"


def send(client: httpx.Client, url: str, body: bytes, chunked: bool = False) -> tuple:
    """POST `body`: seconds to the answer, and the answer (the httpx error's class name
    if the connection failed first)."""
    started = time.perf_counter()
    try:
        pieces = (body[i : i + 65_536] for i in range(0, len(body), 65_536))  # no Content-Length
        text = answer(client.post(url, content=pieces if chunked else body, headers=JSON))
    except httpx.HTTPError as exc:
        text = type(exc).__name__
    return time.perf_counter() - started, text


def probe(url: str, seconds: float) -> list[float]:
    """Latency of each `{ teams { name } }`, one after another for `seconds`."""
    times = []
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.post(url, json={"query": CHEAP}).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def _flood(url: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """In a child process: once `go` is set, 4 threads sending the 5 MB body and 4 the
    alias query, each in a loop for `seconds`; puts the count of each answer on `out`."""

    def sender(body: bytes) -> Counter[str]:
        counts: Counter[str] = Counter()
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                counts[send(client, url, body)[1]] += 1
        return counts

    ready.set()
    go.wait()
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(8) as pool:
        out.put(dict(sum(pool.map(sender, [HUGE_BODY] * 4 + [ALIAS_BODY] * 4), Counter())))


def under_flood(url: str, seconds: float) -> tuple[list[float], dict[str, int]]:
    """Probe latencies while `_flood` runs in another process, and the flood's answers."""
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Event(), context.Event(), context.Queue()
    child = context.Process(target=_flood, args=(url, seconds, ready, go, out))
    child.start()
    ready.wait(60)
    go.set()
    times = probe(url, seconds)
    counts = out.get(timeout=60)
    child.join(10)
    return times, counts


async def new_key(path: Path, name: str = "bench") -> str:
    """Migrate the SQLite database `path`, store an API key named `name` in it, return
    its token."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        _, token = await keys.create_key(session=session, name=name)
    await engine.dispose()
    return token


@contextmanager
def serving(workdir: Path, name: str, model_url: str, **env: str) -> Iterator[Service]:
    """`postassist serve` on `<workdir>/<name>.db` for the block."""
    service = start_service(workdir, name, model_url, **env)
    try:
        yield service
    finally:
        service.proc.stop()


def auth_latencies(callers: dict[str, tuple[str, str | None]], requests: int) -> dict:
    """Seconds per `{ tasks(first: 1) { totalCount } }` of each caller (label: (url,
    token)), taking turns after 20 warm-up requests each, on kept-alive connections."""
    clients = {label: httpx.Client(timeout=30) for label in callers}
    times: dict[str, list[float]] = {label: [] for label in callers}
    for n in range(20 + requests):
        for label, (url, token) in callers.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            started = time.perf_counter()
            response = clients[label].post(url, json={"query": COUNT}, headers=headers)
            elapsed = time.perf_counter() - started
            if answer(response) != "200 ok":
                raise RuntimeError(f"{label}: {response.text[:300]}")
            if n >= 20:
                times[label].append(elapsed)
    for client in clients.values():
        client.close()
    return times


async def limiter_cost(url: str, hits: int) -> list[float] | None:
    """Seconds per `MutationRateLimiter.hit` on `url`'s storage (None if unreachable)."""
    storage = limiter_storage(url)
    if not await storage.check():  # a PING for Redis; False when unreachable
        return None
    limiter = MutationRateLimiter("100000/minute", storage)
    principal, times = f"bench-{uuid.uuid4().hex}", []
    for _ in range(hits):
        started = time.perf_counter()
        await limiter.hit(principal)
        times.append(time.perf_counter() - started)
    return times


def refusal_tables(url: str, plan: Plan) -> None:
    """Time the refusals one after another, then the cheap query idle and under flood."""
    rows = [("request", "answer", "median ms", "p95 ms", "max ms")]
    with httpx.Client(timeout=30) as client:
        for label, body, chunked in REFUSED:
            sent = [send(client, url, body, chunked) for _ in range(plan.tries)]
            answers = ", ".join(sorted({text for _, text in sent}))
            rows.append((label, answers, *_ms([seconds for seconds, _ in sent])))
    print_table(f"refusals ({plan.tries} tries each, one after another)", rows)
    idle = probe(url, plan.flood)
    flooded, counts = under_flood(url, plan.flood)
    print_table(
        f"{CHEAP} from another client, {plan.flood:.0f} s each (flood: 4 threads sending "
        "the 5 MB body and 4 the aliases, from another process)",
        [
            ("when", "requests", "median ms", "p95 ms", "max ms"),
            ("idle", str(len(idle)), *_ms(idle)),
            ("during the flood", str(len(flooded)), *_ms(flooded)),
        ],
    )
    print("  flood answers: " + ", ".join(f"{n} x {a}" for a, n in sorted(counts.items())))


def measure(workdir: Path, plan: Plan) -> None:
    """Run every measurement and print its table (authentication first, on fresh
    servers, printed after the flood)."""
    keyed, uncached = (asyncio.run(new_key(workdir / f"{n}.db")) for n in ("auth", "nocache"))
    claims = {"iss": JWT_ENV["JWT_ISSUER"], "aud": JWT_ENV["JWT_AUDIENCE"], "sub": "bench"}
    token = jwt.encode({**claims, "exp": int(time.time()) + 3600}, JWT_ENV["JWT_SECRET"])
    with (
        stub_model(workdir, latency=0.0) as model_url,
        serving(workdir, "local", model_url) as local,
    ):
        with (
            serving(workdir, "auth", model_url, **JWT_ENV) as auth,
            serving(workdir, "nocache", model_url, AUTH_CACHE_SECONDS="0") as nocache,
        ):
            callers = {
                "local mode, no credentials": (local.url, None),
                "API key (AUTH_CACHE_SECONDS=5: cached)": (auth.url, keyed),
                "API key (AUTH_CACHE_SECONDS=0: read each time)": (nocache.url, uncached),
                "HS256 JWT": (auth.url, token),
            }
            times = auth_latencies(callers, plan.requests)
        refusal_tables(local.url, plan)
    base = median(times["local mode, no credentials"])
    print_table(
        f"authentication per request: {COUNT} ({plan.requests} each, taking turns)",
        [("caller", "median ms", "p95 ms", "max ms", "over local")]
        + [(label, *_ms(t), f"{(median(t) - base) * 1000:+.2f} ms") for label, t in times.items()],
    )
    rows = [("storage", "median us", "p95 us", "max us")]
    for url in ("memory://", REDIS_URL):
        if (hits := asyncio.run(limiter_cost(url, plan.hits))) is None:
            print(f"\n  (Redis at {url} is unreachable: its row is skipped)")
        else:
            rows.append((url, *_ms(hits, scale=1e6)))
    print_table(f"MutationRateLimiter('100000/minute').hit() in-process, {plan.hits} calls", rows)


# --stalls: the attacks of issue 13 ("No client can stall it"), each against one or two
# source trees, with the stall it causes: the worst latency of `{ __typename }` from a
# second client (its own process and connection) while the attack runs.

PROBE = "{ __typename }"
PROBE_GAP = 0.01  # seconds between two probes
PROBE_TIMEOUT = 300.0
WINDOW = 1.0  # the shortest window a stall is measured over, in seconds
IDLE = 2.0  # seconds of probing with no attack
WS_WAIT = 120.0  # the longest wait for a WebSocket answer
SLOW_HEADS, SLOW_HOLD = 600, 12.0  # row 13: connections, and seconds they are held
ISSUER = "https://id.example.com/"
EVIL = "https://evil.example"
GEN = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
TOTAL = "{ tasks { totalCount } }"
PAPER = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}
#: Headers a proxy adds (row 6), as the issue lists them.
PROXY_HEADERS = {
    "Via": "1.1 proxy",
    "X-Forwarded-Proto": "https",
    "True-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "X-Client-IP": "203.0.113.9",
}


def _introspection_fragments(deep: bool = False) -> str:
    """GraphiQL's introspection query (graphql-core's, with descriptions) as a fragment
    `S` on `__Schema` and its own fragments, on one line; `deep`: each field's type, and
    the type it wraps, in full too (a 64 KB answer becomes 190 KB)."""
    from graphql import get_introspection_query

    query = get_introspection_query(
        descriptions=True, input_value_deprecation=True, schema_description=True
    )
    head, rest = query.split("fragment FullType", 1)
    inner = head[
        head.index("__schema {") + len("__schema {") : head.rindex("}", 0, head.rindex("}"))
    ]
    if deep:
        inner += (
            " types { fields(includeDeprecated: true) { type { ...FullType ofType "
            "{ ...FullType } } } }"
        )
    return " ".join(("fragment S on __Schema {" + inner + "} fragment FullType" + rest).split())


def schema_aliases(n: int, deep: bool = False) -> str:
    """`n` aliases of `__schema { ...S }` sharing one fragment (`_introspection_fragments`)."""
    aliases = " ".join(f"a{i}: __schema {{ ...S }}" for i in range(n))
    return f"{{ {aliases} }} {_introspection_fragments(deep)}"


def is_one_of_aliases(n: int) -> str:
    """`n` aliases asking `isOneOf` of every field's, argument's and input field's type
    (wrapped or not) and of what it wraps (row 3)."""
    ref = "isOneOf ofType { isOneOf ofType { isOneOf } }"
    body = (
        f"types {{ name isOneOf fields {{ type {{ {ref} }} args {{ type {{ {ref} }} }} }} "
        f"inputFields {{ type {{ {ref} }} }} }}"
    )
    return "{ " + " ".join(f"a{i}: __schema {{ {body} }}" for i in range(n)) + " }"


QUEUE_ALIASES = (
    "{ "
    + " ".join(
        f"a{i}: tasks(first: 100) {{ edges {{ node {{ queuePosition }} }} }}" for i in range(30)
    )
    + " }"
)


@cache
def big_init() -> str:
    """Row 1: a `connection_init` of 850,000 keys and no credentials."""
    return json.dumps({"type": "connection_init", "payload": {f"k{i}": i for i in range(850_000)}})


@cache
def big_comment() -> str:
    """Row 1: a graphql-transport-ws `subscribe` whose query is a 15 MB comment."""
    query = "#" + "x" * 15_000_000 + "\n{ __typename }"
    return json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} KB"


# -- the servers


@dataclass
class Tree:
    """A source tree to attack: its column's label and its directory."""

    label: str
    path: Path


def tree_of(path: Path, name: str) -> Tree:
    """`path` labelled `<name> (<commit>[ + changes])`."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return Tree(
        f"{name} ({git('rev-parse', '--short', 'HEAD')}{' + changes' if dirty else ''})", path
    )


class TreeProc(Proc):
    """A `Proc` started in `cwd`."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._file, stderr=subprocess.STDOUT
        )


class TreeServer:
    """`postassist serve --no-worker` of a tree (its directory first on PYTHONPATH and
    as cwd; this venv's interpreter) on SQLite `<workdir>/<name>.db`: tasks stay PENDING."""

    def __init__(self, tree: Tree, workdir: Path, name: str, model_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.log = workdir / f"{name}.log"
        full = bench_env(f"sqlite+aiosqlite:///{workdir / name}.db", model_url, **env)
        full["PYTHONPATH"] = str(tree.path)
        args = [console_script(), "serve", "--port", str(self.port), "--no-worker"]
        self.proc = TreeProc(args, full, self.log, tree.path)

    def wait(self, timeout: float = 60) -> int | None:
        """None once /healthz answers 200; the exit code if the process exits first."""
        deadline = time.monotonic() + timeout
        while (code := self.proc.process.poll()) is None:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer:\n{self.proc.output()}")
            time.sleep(0.2)
        return code

    def mark(self) -> int:
        """Where the log ends now."""
        return self.log.stat().st_size

    def logged(self, mark: int, settle: float = 0.3) -> str:
        """What the server logged since `mark` (after `settle` seconds)."""
        time.sleep(settle)
        with self.log.open("rb") as file:
            file.seek(mark)
            return file.read().decode(errors="replace")


def tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


def log_bytes(text: str) -> int:
    """Bytes of log lines other than uvicorn's access lines."""
    return sum(len(line) + 1 for line in text.splitlines() if ' HTTP/1.1" ' not in line)


# -- the second client


def _probing(conn: Any) -> None:
    """In a child process: for each `(url, headers)` received, `{ __typename }` one after
    another (PROBE_GAP apart) on one kept-alive connection, "ready" sent after the first,
    until the next message; then sends back each probe's seconds and the failures."""
    while (job := conn.recv()) is not None:
        url, headers = job
        times, failures = [], 0
        with httpx.Client(timeout=PROBE_TIMEOUT, headers=headers) as client:
            while True:
                started = time.perf_counter()
                try:
                    body = client.post(url, json={"query": PROBE}).json()
                    ok = (body.get("data") or {}).get("__typename") == "Query"
                except (httpx.HTTPError, ValueError):
                    ok = False
                times.append(time.perf_counter() - started)
                failures += not ok
                if len(times) == 1:
                    conn.send("ready")
                if conn.poll():
                    break
                time.sleep(PROBE_GAP)
        conn.recv()
        conn.send((times, failures))


@dataclass
class Stall:
    """The probes of one window: the worst and the median, in seconds; count; failures."""

    worst: float
    median: float
    probes: int
    failures: int

    def __str__(self) -> str:
        failed = f" ({self.failures} failed)" if self.failures else ""
        return f"{self.worst * 1000:,.0f}{failed}"


class Prober:
    """The second client: a spawned process probing on request."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_probing, args=(child,), daemon=True)
        self.process.start()

    def during(self, url: str, headers: dict[str, str], attack: Any, window: float) -> tuple:
        """Run `attack()` while probing `url` (from the first probe's answer to the end of
        the attack, and at least `window` seconds): `(Stall, what attack returned)`."""
        self.conn.send((url, headers))
        if not self.conn.poll(60) or self.conn.recv() != "ready":
            raise RuntimeError("the probe did not answer")
        started = time.monotonic()
        try:
            result = attack()
        finally:
            time.sleep(max(0.0, window - (time.monotonic() - started)))
            self.conn.send("stop")
            times, failures = self.conn.recv()
        return Stall(max(times), median(times), len(times), failures), result

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(10)


# -- the attacks: each returns its answer, as one short line


@dataclass
class Ctx:
    """What an attack gets: the server, its API keys by name, notes between rows."""

    server: TreeServer
    keys: dict[str, str]
    exited: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def post(url: str, query: str, headers: dict[str, str] | None = None, **variables: Any) -> tuple:
    """POST one operation on a new connection: `(response, seconds)`."""
    started = time.perf_counter()
    with httpx.Client(timeout=PROBE_TIMEOUT) as client:
        response = client.post(
            url, json={"query": query, "variables": variables}, headers=headers or {}
        )
    return response, time.perf_counter() - started


def error_codes(response: httpx.Response) -> str:
    """`<status> <n> x <code> (<limit>), ...` of the errors, or `<status> ok`."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return f"{response.status_code} (not JSON)"
    if not errors:
        return f"{response.status_code} ok"
    counts = Counter(
        (e.get("extensions") or {}).get("code", "?")
        + (f" ({e['extensions']['limit']})" if "limit" in (e.get("extensions") or {}) else "")
        for e in errors
    )
    if len(errors) == 1:
        return f"{response.status_code} {next(iter(counts))}"
    return f"{response.status_code} " + ", ".join(f"{n:,} x {c}" for c, n in counts.items())


def summary(message: dict[str, Any]) -> str:
    """A WebSocket message as `<type> [<code of its first error>|ok]`."""
    kind, payload = message.get("type"), message.get("payload")
    errors: Any = None
    if isinstance(payload, list):
        errors = payload
    elif isinstance(payload, dict):
        errors = [payload] if "extensions" in payload else payload.get("errors")
    if errors:
        return f"{kind} {(errors[0].get('extensions') or {}).get('code', errors[0].get('message'))}"
    return f"{kind} ok" if kind in ("next", "data") else str(kind)


async def ws_talk(
    url: str,
    protocol: str,
    init: dict[str, Any] | None,
    messages: list[str],
    *,
    wait: float = WS_WAIT,
    start: asyncio.Event | None = None,
) -> tuple[str, float]:
    """Open a WebSocket of `protocol`; with `init`, send `connection_init` carrying it
    and wait for the ack; (once `start` is set) send `messages` and read until
    `complete`, `error`, `connection_error` or the close: what came back, and the
    seconds from the first of `messages` to then."""
    try:
        async with websockets.connect(
            url,
            subprotocols=[protocol],
            compression=None,
            max_size=None,  # type: ignore[list-item]
            ping_interval=None,
            open_timeout=30,
            close_timeout=5,
        ) as ws:
            if init is not None:
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if ack.get("type") != "connection_ack":
                    return f"no ack: {summary(ack)}", 0.0
            if start is not None:
                await start.wait()
            started, received, end = time.perf_counter(), [], ""
            try:
                for message in messages:
                    await ws.send(message)
                async with asyncio.timeout(wait):
                    while True:
                        got = json.loads(await ws.recv())
                        if got.get("type") in ("ka", "ping", "pong"):
                            continue
                        received.append(summary(got))
                        if got.get("type") in ("complete", "error", "connection_error"):
                            break
            except websockets.ConnectionClosed as closed:
                frame = closed.rcvd
                end = f"closed {frame.code}" if frame else "dropped, no close frame"
            except TimeoutError:
                end = f"no answer in {wait:.0f} s"
            seconds = time.perf_counter() - started
    except websockets.InvalidStatus as exc:
        return f"handshake refused: HTTP {exc.response.status_code}", 0.0
    return ", ".join([*received, *([end] if end else [])]), seconds


def idle(ctx: Ctx) -> str:
    time.sleep(IDLE)
    return ""


def row1_init(ctx: Ctx) -> str:
    text, seconds = asyncio.run(
        ws_talk(ctx.server.ws_url, "graphql-transport-ws", None, [big_init()])
    )
    return f"{text} in {seconds:.2f} s"


def row1_comment(ctx: Ctx) -> str:
    init = ctx.auth("alice")
    text, seconds = asyncio.run(
        ws_talk(ctx.server.ws_url, "graphql-transport-ws", init, [big_comment()])
    )
    return f"{text} in {seconds:.2f} s"


def row1_four(ctx: Ctx) -> str:
    async def four() -> list[tuple[str, float]]:
        start = asyncio.Event()
        talks = [
            asyncio.create_task(
                ws_talk(
                    ctx.server.ws_url,
                    "graphql-transport-ws",
                    ctx.auth("alice"),
                    [big_comment()],
                    start=start,
                )
            )
            for _ in range(4)
        ]
        await asyncio.sleep(1.0)  # all four acknowledged
        start.set()
        return await asyncio.gather(*talks)

    return together(asyncio.run(four()))


def together(results: list[tuple[str, float]]) -> str:
    """Answers of requests sent at once: their counts, and the range of their seconds."""
    counts = Counter(text for text, _ in results)
    times = [seconds for _, seconds in results]
    return (
        ", ".join(f"{n} x {t}" for t, n in counts.items())
        + f" in {min(times):.2f}-{max(times):.2f} s"
    )


def row2(ctx: Ctx) -> str:
    response, seconds = post(ctx.server.url, schema_aliases(30, deep=True))
    return f"{error_codes(response)}, {_mb(len(response.content))} in {seconds:.2f} s"


def row2_eight(ctx: Ctx) -> str:
    def one(_: int) -> tuple[str, float]:
        response, seconds = post(ctx.server.url, schema_aliases(2))
        return f"{error_codes(response)} {_mb(len(response.content))}", seconds

    with ThreadPoolExecutor(8) as pool:
        return together(list(pool.map(one, range(8))))


def row3(n: int) -> Any:
    def attack(ctx: Ctx) -> str:
        mark = ctx.server.mark()
        response, seconds = post(ctx.server.url, is_one_of_aliases(n))
        text = ctx.server.logged(mark)
        return (
            f"{error_codes(response)} in {seconds:.2f} s; {tracebacks(text):,} tracebacks, "
            f"log +{_mb(log_bytes(text))}"
        )

    return attack


def row4_setup(ctx: Ctx) -> None:
    """Alice's 100 tasks, PENDING (no worker); bob's generatePost timed once, idle."""
    with httpx.Client(timeout=60, headers=ctx.auth("alice")) as client:
        for _ in range(100):
            body = client.post(ctx.server.url, json={"query": GEN, "variables": {"input": PAPER}})
            if answer(body) != "200 ok":
                raise RuntimeError(f"alice's task: {body.text[:300]}")
    _, seconds = post(ctx.server.url, GEN, ctx.auth("bob"), input=PAPER)
    ctx.notes["bob idle"] = seconds


def row4(ctx: Ctx) -> str:
    if "bob idle" not in ctx.notes:
        row4_setup(ctx)
    response, seconds = post(ctx.server.url, QUEUE_ALIASES, ctx.auth("alice"))
    return f"{error_codes(response)} in {seconds:.2f} s"


def row4_three(ctx: Ctx) -> str:
    if "bob idle" not in ctx.notes:
        row4_setup(ctx)

    def alice(_: int) -> tuple[str, float]:
        response, seconds = post(ctx.server.url, QUEUE_ALIASES, ctx.auth("alice"))
        return error_codes(response), seconds

    def bob() -> float:
        time.sleep(1.0)
        return post(ctx.server.url, GEN, ctx.auth("bob"), input=PAPER)[1]

    with ThreadPoolExecutor(4) as pool:
        other = pool.submit(bob)
        queries = list(pool.map(alice, range(3)))
    return (
        f"{together(queries)}; bob's generatePost {other.result():.2f} s "
        f"(idle {ctx.notes['bob idle']:.2f} s)"
    )


def row5(ctx: Ctx) -> str:
    if ctx.exited is not None:
        lines = [ln for ln in ctx.server.proc.output().splitlines() if "CORS_ORIGINS" in ln]
        return f"serve exits {ctx.exited}: {lines[0].strip()[:60] if lines else ''}"
    response, _ = post(ctx.server.url, GEN, {"Origin": EVIL}, input=PAPER)
    acao = response.headers.get("access-control-allow-origin", "none")
    return f"{answer(response)} (access-control-allow-origin: {acao})"


def row6(ctx: Ctx) -> str:
    answers = Counter(
        answer(post(ctx.server.url, TOTAL, {name: value})[0])
        for name, value in PROXY_HEADERS.items()
    )
    return ", ".join(f"{n}/{len(PROXY_HEADERS)} {a}" for a, n in answers.items())


def row7(ctx: Ctx) -> str:
    query = "query($a: String) { tasks(after: $a) { totalCount } }"
    found = []
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        cursor = base64.urlsafe_b64encode(f"task|{when}|x".encode()).decode()
        found.append(answer(post(ctx.server.url, query, a=cursor)[0]))
    return ", ".join(found)


def row8_brackets(ctx: Ctx) -> str:
    return ws_row(ctx, "graphql-transport-ws", ["[" * 100_000 + "]" * 100_000])


def row8_query_123(ctx: Ctx) -> str:
    message = {"id": "1", "type": "subscribe", "payload": {"query": 123}}
    return ws_row(ctx, "graphql-transport-ws", [json.dumps(message)])


def row8_start(query: str) -> Any:
    def attack(ctx: Ctx) -> str:
        message = {"id": "1", "type": "start", "payload": {"query": query}}
        return ws_row(ctx, "graphql-ws", [json.dumps(message)])

    return attack


def ws_row(ctx: Ctx, protocol: str, messages: list[str]) -> str:
    """Send `messages` after the ack (local mode): the answer and the tracebacks logged."""
    mark = ctx.server.mark()
    text, seconds = asyncio.run(ws_talk(ctx.server.ws_url, protocol, {}, messages, wait=5))
    return f"{text} in {seconds:.2f} s; tracebacks: {tracebacks(ctx.server.logged(mark))}"


def row8_disconnect(ctx: Ctx) -> str:
    async def leave() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", ctx.server.port)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"query": "{ __typ'
        )
        await writer.drain()
        writer.close()

    mark = ctx.server.mark()
    asyncio.run(leave())
    text = ctx.server.logged(mark, settle=0.5)
    found = [f"tracebacks: {tracebacks(text)}"]
    if "ClientDisconnect" in text:
        found.append("ClientDisconnect")
    if "client disconnected" in text:
        found.append("an INFO line 'client disconnected'")
    elif not log_bytes(text):
        found.append("nothing logged")
    return ", ".join(found)


def row9(ctx: Ctx) -> str:
    page = httpx.get(ctx.server.url, headers={"Accept": "text/html"}, timeout=30)
    headers = page.headers
    found = [
        f"X-Frame-Options {headers.get('x-frame-options', '-')}",
        "frame-ancestors "
        + ("yes" if "frame-ancestors" in headers.get("content-security-policy", "") else "-"),
        f"nosniff {'yes' if headers.get('x-content-type-options') == 'nosniff' else '-'}",
        f"Referrer-Policy {headers.get('referrer-policy', '-')}",
        "persists headers" if "shouldPersistHeaders: true" in page.text else "no persisted headers",
        "?query= pre-fills"
        if "parameters.query" in page.text or "parameters.q" in page.text
        else "nothing from the URL",
    ]
    return ", ".join(found)


def row10(ctx: Ctx) -> str:
    claims = {"iss": ISSUER, "sub": "x", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    response, _ = post(ctx.server.url, CHEAP, {"Authorization": f"Bearer {token}"})
    message = (response.json().get("errors") or [{}])[0].get("message", "")
    return f"{answer(response)}: {message[:70]!r}"


def row11(ctx: Ctx) -> str:
    mark = ctx.server.mark()
    httpx.get(
        ctx.server.url.removesuffix("/graphql") + "/healthz?row11",
        headers={"X-Forwarded-For": "6.6.6.6"},
        timeout=30,
    )
    lines = [ln for ln in ctx.server.logged(mark).splitlines() if "/healthz?row11" in ln]
    if not lines:
        return "no access line"
    return "access log: " + (
        "6.6.6.6" if "6.6.6.6" in lines[0] else lines[0].split()[1].rsplit(":", 1)[0]
    )


def row12(ctx: Ctx) -> str:
    title = answer(post(ctx.server.url, GEN, input={"paperTitle": "\u200b" * 5})[0])
    context = "\x1b[31mBLEU 28.4\x1b[0m on WMT\u202e 2014."
    created, _ = post(ctx.server.url, GEN, input={**PAPER, "additionalContext": context})
    task_id = created.json()["data"]["generatePost"]["id"]
    query = "query($id: ID!) { task(id: $id) { additionalContext } }"
    stored = post(ctx.server.url, query, id=task_id)[0].json()["data"]["task"]["additionalContext"]
    kept = "kept" if "\x1b" in stored or "\u202e" in stored else "stripped"
    return f"5 x U+200B title: {title}; ANSI/RTL in the context: {kept}"


def row13_queue(ctx: Ctx) -> str:
    counts: Counter[str] = Counter()
    with httpx.Client(timeout=60, headers=ctx.auth("bob")) as client:
        for _ in range(100):
            body = client.post(ctx.server.url, json={"query": GEN, "variables": {"input": PAPER}})
            counts[answer(body)] += 1
    with httpx.Client(timeout=60, headers=ctx.auth("alice")) as client:
        for _ in range(4):
            client.post(ctx.server.url, json={"query": GEN, "variables": {"input": PAPER}})
        query = "{ tasks(first: 10) { edges { node { queuePosition } } } }"
        edges = client.post(ctx.server.url, json={"query": query}).json()["data"]["tasks"]["edges"]
    places = sorted(e["node"]["queuePosition"] for e in edges)
    return (
        "bob's 100: "
        + ", ".join(f"{n} x {a}" for a, n in counts.items())
        + f"; alice's 4 wait at {places[0]}-{places[-1]}"
    )


def row13_slow(ctx: Ctx) -> str:
    async def heads() -> list[tuple[float | None, bytes]]:
        async def one() -> tuple[float | None, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", ctx.server.port)
            opened = time.monotonic()
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
                await writer.drain()
                data = await asyncio.wait_for(reader.read(), SLOW_HOLD)
                return time.monotonic() - opened, data
            except TimeoutError:
                return None, b""
            except OSError:
                return time.monotonic() - opened, b""
            finally:
                writer.close()

        return await asyncio.gather(*(one() for _ in range(SLOW_HEADS)))

    results = asyncio.run(heads())
    closed = [(t, data) for t, data in results if t is not None]
    text = f"{len(closed)}/{SLOW_HEADS} closed by the server in {SLOW_HOLD:.0f} s"
    if closed:
        times = [t for t, _ in closed]
        with_408 = sum(data.startswith(b"HTTP/1.1 408") for _, data in closed)
        text += f" ({with_408} with HTTP 408, after {min(times):.1f}-{max(times):.1f} s)"
    return text


def row13_keys(ctx: Ctx) -> str:
    counts: Counter[str] = Counter()
    with httpx.Client(timeout=60) as client:
        for n in range(30):
            token = f"pa_{n:08x}_{'x' * 43}"
            response = client.post(
                ctx.server.url, json={"query": TOTAL}, headers={"Authorization": f"Bearer {token}"}
            )
            extensions = (response.json().get("errors") or [{}])[0].get("extensions") or {}
            counts[answer(response) + (" + retryAfter" if "retryAfter" in extensions else "")] += 1
    return ", ".join(f"{n} x {a}" for a, n in counts.items())


@dataclass
class Row:
    """One line of the table: the issue's row, the attack, the server it needs ("key":
    API keys alice and bob and an RSA JWT key; "local": local mode; "cap": keys and the
    default MAX_QUEUED_PER_PRINCIPAL; "wild": local mode with CORS_ORIGINS=*), the
    attack, and whether a second client probes during it (and over how long at least)."""

    row: str
    attack: str
    server: str
    run: Any
    stall: bool = True
    window: float = WINDOW


ROWS = [
    Row("-", f"idle, API keys ({IDLE:.0f} s, no attack)", "key", idle, window=IDLE),
    Row("-", f"idle, local mode ({IDLE:.0f} s, no attack)", "local", idle, window=IDLE),
    Row("1", "WS connection_init, 850,000 keys, no credentials", "key", row1_init),
    Row("1", "WS subscribe, a key, query a 15 MB comment", "key", row1_comment),
    Row("1", "the same, four connections at once", "key", row1_four),
    Row(
        "2",
        "30 aliases of __schema { ...S } (S: introspection, field types in full)",
        "local",
        row2,
    ),
    Row("2", "8 at once, each 2 aliases of GraphiQL's introspection", "local", row2_eight),
    Row("3", "isOneOf on every type ref, 30 aliases of __schema", "local", row3(30)),
    Row("3", "the same, 1 alias", "local", row3(1)),
    Row("4", "100 own tasks PENDING, 30 aliases of tasks(first: 100) queuePosition", "key", row4),
    Row("4", "the same, 3 at once (the issue: 6); bob's generatePost", "key", row4_three),
    Row("5", "CORS_ORIGINS=* in local mode, generatePost from Origin evil", "wild", row5, False),
    Row("6", "local mode, one proxy header each (5 headers)", "local", row6, False),
    Row("7", "tasks cursors at 0001-01-01+14:00 and 9999-12-31-14:00", "local", row7, False),
    Row(
        "8",
        "WS (transport-ws) JSON nested 100,000 deep (200 KB), after ack",
        "local",
        row8_brackets,
    ),
    Row("8", 'WS (transport-ws) subscribe with "query": 123', "local", row8_query_123),
    Row("8", "WS (graphql-ws) start of a query", "local", row8_start("{ __typename }")),
    Row(
        "8",
        "WS (graphql-ws) start of a mutation",
        "local",
        row8_start('mutation { cancelTask(id: "x") { id } }'),
    ),
    Row("8", "HTTP client leaves after 18 of 1,000 body bytes", "local", row8_disconnect),
    Row("9", "GET /graphql (text/html): the page's headers", "local", row9, False),
    Row("10", "ES256 JWT against an RSA key", "key", row10, False),
    Row("11", "X-Forwarded-For: 6.6.6.6 from loopback", "local", row11, False),
    Row("12", "title of 5 zero-width spaces; ANSI and RTL in the context", "local", row12, False),
    Row("13", "one key submits 100 tasks; another then 4", "cap", row13_queue, False),
    Row("13", f"{SLOW_HEADS} connections that never finish their head", "local", row13_slow),
    Row("13", "30 unknown well-formed keys from one address", "cap", row13_keys, False),
]
ORDER = ("key", "local", "cap", "wild")


def server_env(kind: str, workdir: Path) -> dict[str, str]:
    """The environment of each kind of server (over `bench_env`)."""
    if kind == "key":
        return {"JWT_ISSUER": ISSUER, "JWT_PUBLIC_KEY_FILE": str(rsa_public_key(workdir))}
    if kind == "local":
        return {"LOG_LEVEL": "info"}  # the INFO lines and uvicorn's access log
    if kind == "cap":
        return {"MAX_QUEUED_PER_PRINCIPAL": "10"}  # the default (bench_env lifts it)
    return {"CORS_ORIGINS": "*"}


def rsa_public_key(workdir: Path) -> Path:
    """A new RSA public key's PEM file (the JWT key of the "key" servers)."""
    pem = workdir / "jwt-public.pem"
    if not pem.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pem


def attack_tree(tree: Tree, workdir: Path, model_url: str, prober: Prober, rows: list[Row]) -> dict:
    """Every row of `rows` against `tree`, one server at a time: {row index: (stall, answer)}."""
    results: dict[int, tuple[str, str]] = {}
    for kind in ORDER:
        chosen = [(n, row) for n, row in enumerate(rows) if row.server == kind]
        if not chosen:
            continue
        directory = workdir / f"{tree.path.name}-{kind}"
        directory.mkdir(parents=True, exist_ok=True)
        names = ("alice", "bob") if kind in ("key", "cap") else ()
        tokens = {name: asyncio.run(new_key(directory / f"{kind}.db", name)) for name in names}
        server = TreeServer(tree, directory, kind, model_url, **server_env(kind, workdir))
        ctx = Ctx(server, tokens)
        try:
            ctx.exited = server.wait()
            for n, row in chosen:
                print(f"  {tree.label}: row {row.row}, {row.attack}", flush=True)
                results[n] = run_row(row, ctx, prober)
        finally:
            server.proc.stop()
    return results


def run_row(row: Row, ctx: Ctx, prober: Prober) -> tuple[str, str]:
    """`(stall in ms or "-", answer)` of one row (an exception is its answer)."""
    headers = ctx.auth("bob") if "bob" in ctx.keys else {}
    if ctx.exited is not None and row.server != "wild":
        return "-", f"serve exited {ctx.exited}: {ctx.server.proc.output()[-100:]!r}"
    try:
        if row.stall and ctx.exited is None:
            stall, text = prober.during(ctx.server.url, headers, lambda: row.run(ctx), row.window)
            if row.run is idle:
                text = f"median {stall.median * 1000:.1f} ms, {stall.probes} probes"
            return str(stall), text
        return "-", row.run(ctx)
    except Exception as exc:  # a failed attack is a figure too
        return "-", f"failed: {type(exc).__name__}: {str(exc)[:80]}"


def stalls(workdir: Path, trees: list[Tree], only: set[str] | None) -> None:
    """The table of --stalls: each row against each tree."""
    chosen = [r for r in ROWS if r.row != "-" and (only is None or r.row in only)]
    kinds = {r.server for r in chosen}
    rows = [r for r in ROWS if r in chosen or (r.row == "-" and r.server in kinds)]
    big_init(), big_comment()  # built once, before any window
    prober = Prober()
    try:
        with stub_model(workdir, latency=0.0) as model_url:
            columns = [attack_tree(t, workdir, model_url, prober, rows) for t in trees]
    finally:
        prober.close()
    header = ("row", "attack")
    for tree in trees:
        header += (f"{tree.label}: stall ms", "answer")
    table = [header]
    for n, row in enumerate(rows):
        line: tuple[str, ...] = (row.row, row.attack)
        for column in columns:
            line += column.get(n, ("-", "not run"))
        table.append(line)
    print_table(
        f"issue 13: worst {PROBE} from a second client during each attack (stall, ms; "
        "'-': a refusal, not timed), and what the attacker got",
        table,
    )


def main() -> None:
    """Parse the arguments, run in a temporary directory, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--stalls", action="store_true", help="issue 13's attacks and the stall each causes"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="with --stalls: another source tree (e.g. a git worktree) attacked first, "
        "in a column of its own",
    )
    parser.add_argument(
        "--after",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="with --stalls: the tree of the second column (default: this one)",
    )
    parser.add_argument("--rows", help="with --stalls: only these rows of the issue (e.g. 1,4,13)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="postassist-bench-") as tmp:
        if args.stalls:
            trees = [tree_of(args.before.resolve(), "before")] if args.before else []
            trees.append(tree_of(args.after.resolve(), "after" if args.before else "this tree"))
            only = set(args.rows.split(",")) if args.rows else None
            stalls(Path(tmp), trees, only)
        else:
            measure(Path(tmp), QUICK if args.quick else FULL)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
