"""End to end, no fakes: `postassist serve` with the bundled SmolLM2 model, then
`postassist generate --json` on a real paper, then the event log over GraphQL. While the
model works on it, a second paper is submitted (a busy model accepts work) and the model
server is killed (the app restarts it and both runs go on)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from agents.checks import rules, verdicts
from agents.teams.state import TEAMS
from graph.cli.client import GraphQLClient
from tests.graph.conftest import free_port

pytestmark = pytest.mark.e2e

TITLE = "Attention Is All You Need"
#: The paper's abstract (Vaswani et al., 2017).
ABSTRACT = (
    "The dominant sequence transduction models are based on complex recurrent or "
    "convolutional neural networks that include an encoder and a decoder. The best performing "
    "models also connect the encoder and decoder through an attention mechanism. We propose a "
    "new simple network architecture, the Transformer, based solely on attention mechanisms, "
    "dispensing with recurrence and convolutions entirely. Experiments on two machine "
    "translation tasks show these models to be superior in quality while being more "
    "parallelizable and requiring significantly less time to train. Our model achieves 28.4 "
    "BLEU on the WMT 2014 English-to-German translation task, improving over the existing best "
    "results, including ensembles, by over 2 BLEU. On the WMT 2014 English-to-French "
    "translation task, our model establishes a new single-model state-of-the-art BLEU score of "
    "41.8 after training for 3.5 days on eight GPUs, a small fraction of the training costs of "
    "the best models from the literature."
)
#: Seconds the service may take to start the model and answer.
STARTUP = 120
#: Seconds one generation may take on 2 cores (measured: well under a minute).
GENERATION = 600


def _console_script() -> str:
    found = shutil.which("postassist", path=str(Path(sys.executable).parent))
    assert found, "the postassist console script is not installed"
    return found


class Served(NamedTuple):
    """A running `postassist serve`: its GraphQL URL and process id."""

    url: str
    pid: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`postassist serve` on a free port with a fresh SQLite file; yields its GraphQL URL
    and process id."""
    workdir = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'e2e.db'}",
        "LLM_PROVIDER": "local",
        "PORT": str(port),
        "BROADCAST_URL": "memory://",
    }
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [_console_script(), "serve"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            assert process.poll() is None, (workdir / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.5)
        yield Served(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()  # its model server dies with it (PR_SET_PDEATHSIG)
            process.wait()
        log.close()


HEALTH = "{ health { model { ready state reason inFlight restarts } } }"
SECOND = (
    'mutation { generatePost(input: {paperTitle: "BERT: Pre-training of Deep Bidirectional '
    'Transformers for Language Understanding", additionalContext: "BERT is pre-trained on '
    'unlabeled text by jointly conditioning on both left and right context."}) { id status } }'
)


def _gql(url: str, query: str) -> dict:
    body = httpx.post(url, json={"query": query}, timeout=30).json()
    assert "errors" not in body, body
    return body["data"]


def _model_server_pid(serve: int) -> int:
    """The bundled llama.cpp server: the child process of `postassist serve`."""
    children = Path(f"/proc/{serve}/task/{serve}/children").read_text().split()
    for child in children:
        if b"llama_cpp.server" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError(f"no llama_cpp.server among the children {children} of {serve}")


def _busy_then_kill(served: Served) -> tuple[str, int]:
    """Wait until the model works on a call; submit a second paper (accepted while the
    model is busy); kill -9 the model server. Returns the second task's id and the
    killed pid."""
    url = served.url
    deadline = time.monotonic() + GENERATION
    while _gql(url, HEALTH)["health"]["model"]["state"] != "BUSY":
        assert time.monotonic() < deadline, "the model never got busy"
        time.sleep(0.2)
    second = _gql(url, SECOND)["generatePost"]
    assert second["status"] == "PENDING"
    pid = _model_server_pid(served.pid)
    os.kill(pid, signal.SIGKILL)
    return second["id"], pid


def test_generation_with_the_bundled_model(served: Served) -> None:
    service = served.url
    started = time.monotonic()
    cli = subprocess.Popen(
        [
            _console_script(),
            "generate",
            TITLE,
            "--context",
            ABSTRACT,
            "--audience",
            "ML engineers",
            "--max-hashtags",
            "5",
            "--url",
            service,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        second_id, killed = _busy_then_kill(served)
        stdout, stderr = cli.communicate(timeout=GENERATION)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    seconds = time.monotonic() - started
    assert cli.returncode == 0, stdout + stderr
    task = json.loads(stdout)
    assert task["status"] == "COMPLETED", task["error"]

    post = task["result"]["content"]
    assert post.strip()
    check = rules.style_check(post, max_hashtags=5)
    assert check["hard_issues"] == [], check  # <= 3000 chars, <= 5 hashtags, hook before fold
    assert task["result"]["hashtags"]
    assert {r["agent"] for r in task["verificationReports"]} == {"tech_verifier", "style_checker"}

    events = _all_events(service, task["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["kind"] == "TASK_STATUS" and events[-1]["status"] == "COMPLETED"
    seen = {(e["kind"], e["team"], e["agent"]) for e in events}
    for team, agents in TEAMS.items():
        assert ("TEAM_STARTED", team, None) in seen and ("TEAM_FINISHED", team, None) in seen
        for agent in agents:
            assert ("AGENT_STARTED", team, agent) in seen
            assert ("AGENT_FINISHED", team, agent) in seen
    # Honest outcome: either no sentence fails the grounding check, or the task says so.
    tech = verdicts.technical_report(post, title=TITLE, context=ABSTRACT)
    if task["approved"] is not False:
        assert tech["unsupported_claims"] == [], tech["unsupported_claims"]
    else:
        assert task["result"]["approved"] is False and task["result"]["openIssues"]
    usage = task["usage"]
    llm_events = [e for e in events if e["kind"] == "LLM_USAGE"]
    assert usage["llmCalls"] == len(llm_events) > 0 and usage["outputTokens"] > 0
    # The killed model server came back (once) and the paper submitted meanwhile ran too.
    model = _gql(service, HEALTH)["health"]["model"]
    assert model["restarts"] == 1 and model["ready"] and _model_server_pid(served.pid) != killed
    second = _wait(service, second_id)
    assert second["status"] == "COMPLETED", second
    print(
        f"\nlocal-model generation: {seconds:.1f}s, {usage['llmCalls']} LLM calls, "
        f"{usage['inputTokens']} input + {usage['outputTokens']} output tokens, "
        f"{task['revisions']} revisions, {len(events)} events, approved {task['approved']}"
    )


def _wait(url: str, task_id: str) -> dict:
    query = f'{{ task(id: "{task_id}") {{ status error {{ code message }} }} }}'
    deadline = time.monotonic() + GENERATION
    while (task := _gql(url, query)["task"])["status"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, task
        time.sleep(0.5)
    return task


def _all_events(url: str, task_id: str) -> list[dict]:
    import asyncio

    query = """
    query($id: ID!, $after: String) {
      agentLogs(taskId: $id, first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node { seq kind team agent status } }
      }
    }"""
    client = GraphQLClient(url)

    async def fetch() -> list[dict]:
        events, after = [], None
        while True:
            page = (await client.execute(query, {"id": task_id, "after": after}))["agentLogs"]
            events += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return events
            after = page["pageInfo"]["endCursor"]

    return asyncio.run(fetch())
