"""Real processes for the durability tests: the stub model and `postassist` servers and
workers, each on a free loopback port, with small synchronous GraphQL helpers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from agents.llm.local_server import free_port

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
TASK = """query($id: ID!) { task(id: $id) {
  id status attempt workerId error { code message } usage { llmCalls } lastSeq } }"""
EVENTS = """query($id: ID!, $after: String) {
  agentLogs(taskId: $id, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { seq kind team agent status attempt timestamp data message } }
  } }"""
INPUT = {
    "paperTitle": "Chinchilla: Training Compute-Optimal Large Language Models",
    "additionalContext": "Chinchilla has 70 billion parameters and was trained on 1.4 trillion "
    "tokens. It outperforms Gopher, which has 280 billion parameters.",
}


def console_script() -> str:
    """The installed `postassist` command of this interpreter's environment."""
    found = shutil.which("postassist", path=str(Path(sys.executable).parent))
    assert found, "the postassist console script is not installed"
    return found


class Proc:
    """A child process with its log file; `kill()` is SIGKILL, `stop()` SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.process = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._file.close()
        return self.process.returncode

    def exited(self) -> bool:
        """True once the process has ended (killed, stopped or crashed)."""
        return self.process.poll() is not None

    def wait_output(self, text: str, timeout: float = 60) -> None:
        """Wait until the process has printed `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text(errors="replace")[-4000:]


def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    """Wait until `url` answers 200; fail with the process's log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.process.poll() is None, proc.output()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer:\n{proc.output()}"
        time.sleep(0.2)


@contextmanager
def stub_model(workdir: Path, *, latency: float, single_slot: bool = False) -> Iterator[str]:
    """The stub model in its own process; yields its base URL (ending in /v1).
    `single_slot`: one request at a time, like llama-cpp-python's server."""
    port = free_port()
    args = [sys.executable, "-m", "tests.stub_model", "--port", str(port)]
    if single_slot:
        args.append("--single-slot")
    proc = Proc([*args, "--latency", str(latency)], dict(os.environ), workdir / "stub.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.stop()


def stub_calls(base_url: str) -> list[dict[str, Any]]:
    """Every call the stub answered so far, oldest first."""
    return stub_report(base_url)["log"]


def stub_report(base_url: str) -> dict[str, Any]:
    """The stub's `/calls`: `{"count", "log", "max_in_flight"}`."""
    return httpx.get(base_url.removesuffix("/v1") + "/calls", timeout=5).json()


def set_stub_latency(base_url: str, seconds: float) -> None:
    """Make the stub at `base_url` answer each call that arrives from now on after
    `seconds` (calls already waiting keep the latency they started with)."""
    reply = httpx.put(
        base_url.removesuffix("/v1") + "/latency", json={"seconds": seconds}, timeout=5
    )
    reply.raise_for_status()


def service_env(database_url: str, model_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `postassist` process using `database_url` and the stub."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "stub",
        "LLM_MAX_RETRIES": "0",
        "FOLLOW_POLL_SECONDS": "0.5",
        "HEARTBEAT_SECONDS": "0.5",
        "QUEUE_POLL_SECONDS": "0.1",
        "LOG_LEVEL": "warning",
        # Fleet tests and benchmarks start hundreds of tasks as one (local) principal.
        "RATE_LIMIT_MUTATIONS": "100000/minute",
        "MAX_QUEUED_PER_PRINCIPAL": "10000",
        **extra,
    }


class Service:
    """`postassist serve` (API, optionally a worker too) on a free port."""

    def __init__(self, env: dict[str, str], log: Path, *, worker: bool = True) -> None:
        self.port = free_port()
        args = [console_script(), "serve", "--port", str(self.port)]
        self.proc = Proc(args + ([] if worker else ["--no-worker"]), env, log)
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc)

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        """POST one operation; returns `data` (fails on GraphQL errors)."""
        body = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        payload = body.json()
        assert not payload.get("errors"), payload
        return payload["data"]

    def generate(self, **overrides: Any) -> str:
        """Start a generation; returns its task id."""
        return self.gql(GENERATE, input={**INPUT, **overrides})["generatePost"]["id"]

    def task(self, task_id: str) -> dict[str, Any]:
        """The task's status, attempt, worker, error, usage and last seq."""
        return self.gql(TASK, id=task_id)["task"]

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """Every event of the task, in seq order."""
        events: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.gql(EVENTS, id=task_id, after=after)["agentLogs"]
            events += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return events
            after = page["pageInfo"]["endCursor"]

    def wait_for(self, task_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the task is in one of `statuses`; returns it."""
        deadline = time.monotonic() + timeout
        while (task := self.task(task_id))["status"] not in statuses:
            assert time.monotonic() < deadline, f"task stuck as {task}"
            time.sleep(0.1)
        return task


def worker(env: dict[str, str], log: Path) -> Proc:
    """`postassist worker` with `env` (set WORKER_ID there)."""
    return Proc([console_script(), "worker"], env, log)


def terminal_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that end a task (COMPLETED, FAILED, CANCELLED)."""
    return [
        e
        for e in events
        if e["kind"] == "TASK_STATUS" and e["status"] in ("COMPLETED", "FAILED", "CANCELLED")
    ]


def assert_one_clean_run(events: list[dict[str, Any]], status: str = "COMPLETED") -> None:
    """Gapless seq from 1, and exactly one terminal event, the last, with `status`."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    ends = terminal_events(events)
    assert len(ends) == 1 and ends[0] is events[-1] and ends[0]["status"] == status, ends
