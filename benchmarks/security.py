"""The security limits of a real `postassist serve` (SQLite, memory bus, stub model) over
HTTP on 127.0.0.1: how fast hostile requests are refused and with which error (1,000
aliases; a 5 MB body, declared and chunked); a cheap query's latency from another client
while they flood the server (from another process: 4 threads sending the 5 MB body, 4 the
aliases), against idle; what authentication adds per request (local mode, API key cached
or read each time, HS256 JWT); the mutation rate limiter's cost per call (memory, Redis).
Prints tables; asserts nothing.

Usage: `python -m benchmarks.security [--quick]` (~50 s; `--quick` ~25 s). Redis on
127.0.0.1:6379 is optional (skipped with a note).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from benchmarks.harness import median, print_table, start_service
from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.ratelimit import MutationRateLimiter, limiter_storage
from tests.processes import Service, stub_model

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


async def new_key(path: Path) -> str:
    """Migrate the SQLite database `path`, store an API key in it, return its token."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        _, token = await keys.create_key(session=session, name="bench")
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


def main() -> None:
    """Parse `--quick`, run in a temporary directory, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="postassist-bench-") as tmp:
        measure(Path(tmp), QUICK if args.quick else FULL)
    print(f"\n(total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
