"""Webhook deliveries (issue 16's figures) on one `postassist serve` (SQLite, memory bus,
default polls) with the stub model at a fixed latency and a receiver on loopback in
this process (so `WEBHOOK_ALLOW_PRIVATE=true`). Prints tables; asserts nothing.

- Delivery latency: the COMPLETED event's server stamp (`data.occurredAt`) -> the
  receiver has the signed POST, for N tasks started at once (a webhook on
  TASK_COMPLETED answering 200 at once).
- Retry schedule: a receiver that answers 500 to the first `--failures` attempts of each
  delivery: the gap between attempt n and n+1 as observed, against the nominal
  `WEBHOOK_RETRY_BASE_SECONDS * 3**(n-1)` (+-20% jitter). The base is `--base` (1 s by
  default, so the run takes seconds; the service's default is 5 s, the same code).

Usage: `python -m benchmarks.webhooks [--tasks 20] [--failures 3] [--base 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.harness import print_table, start_service
from graph.cli.client import GraphQLClient
from tests.graph.conftest import free_port, serve
from tests.processes import GENERATE, INPUT, stub_model

REGISTER = """mutation($url: String!) {
  registerWebhook(url: $url, events: [TASK_COMPLETED]) { webhook { id } } }"""
#: Seconds the benchmark waits for every delivery before it gives up.
WAIT = 300.0


class Receiver:
    """Notes when each POST arrived, per path and `webhook-id`; answers 500 to the first
    `failures` attempts of each id on /flaky."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.arrivals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.stamps: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def endpoint(self, request: Request) -> Response:
        now = time.time()
        body = await request.json()
        message = request.headers["webhook-id"]
        times = self.arrivals[request.url.path][message]
        times.append(now)
        self.stamps[message] = datetime.fromisoformat(body["data"]["occurredAt"]).timestamp()
        self.changed.set()
        if request.url.path == "/flaky" and len(times) <= self.failures:
            return Response("try again", status_code=500)
        return Response("ok")

    async def until(self, path: str, messages: int, attempts: int) -> None:
        async with asyncio.timeout(WAIT):
            while sum(len(t) >= attempts for t in self.arrivals[path].values()) < messages:
                self.changed.clear()
                await self.changed.wait()


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f} ms"


async def run(tasks: int, failures: int, base: float) -> None:
    receiver = Receiver(failures)
    routes = [Route("/{path:path}", receiver.endpoint, methods=["POST"])]
    with tempfile.TemporaryDirectory() as tmp, stub_model(Path(tmp), latency=0.05) as url:
        async with serve(Starlette(routes=routes), free_port()) as host:
            service = start_service(
                Path(tmp),
                "webhooks",
                url,
                WEBHOOK_ALLOW_PRIVATE="true",
                WEBHOOK_RETRY_BASE_SECONDS=str(base),
                MAX_QUEUED_PER_PRINCIPAL="1000",
                RATE_LIMIT_MUTATIONS="100000/minute",
            )
            try:
                client = GraphQLClient(service.url)
                await client.execute(REGISTER, {"url": f"http://{host}/fast"})
                await client.execute(REGISTER, {"url": f"http://{host}/flaky"})
                await asyncio.gather(
                    *(client.execute(GENERATE, {"input": INPUT}) for _ in range(tasks))
                )
                await receiver.until("/fast", tasks, 1)
                await receiver.until("/flaky", tasks, failures + 1)
            finally:
                service.proc.stop()
    fast = receiver.arrivals["/fast"]
    latencies = [times[0] - receiver.stamps[message] for message, times in fast.items()]
    print_table(
        f"Delivery latency: COMPLETED committed -> receiver has the POST ({tasks} tasks at once)",
        [
            ("deliveries", "p50", "p95", "max"),
            (str(len(latencies)), _ms(latencies, 0.5), _ms(latencies, 0.95), _ms(latencies, 1.0)),
        ],
    )
    gaps: dict[int, list[float]] = defaultdict(list)
    for times in receiver.arrivals["/flaky"].values():
        for n, (before, after) in enumerate(itertools.pairwise(times), start=1):
            gaps[n].append(after - before)
    rows = [("after attempt", "nominal", "jitter window", "observed median", "min", "max")]
    for n, values in sorted(gaps.items()):
        nominal = base * 3 ** (n - 1)
        rows.append(
            (
                str(n),
                f"{nominal:.1f} s",
                f"{nominal * 0.8:.1f}-{nominal * 1.2:.1f} s",
                f"{statistics.median(values):.2f} s",
                f"{min(values):.2f} s",
                f"{max(values):.2f} s",
            )
        )
    print_table(f"Retry schedule ({failures} failures per delivery, base {base:g} s)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--failures", type=int, default=3)
    parser.add_argument("--base", type=float, default=1.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.tasks, args.failures, args.base))


if __name__ == "__main__":
    main()
