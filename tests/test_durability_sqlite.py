"""The embedded default survives `kill -9`: one `postassist serve` on SQLite with a stub
model, killed during the Content team and started again, completes the task from its
checkpoint; fifty tasks killed mid-run at once all complete once, with no gap, and
nothing a subscriber saw before the kill is missing from the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from graph.cli.client import TASK_PROGRESS, GraphQLClient
from tests.processes import Service, assert_one_clean_run, service_env, stub_calls, stub_model

pytestmark = pytest.mark.durability


def test_kill_9_during_the_content_team_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    with stub_model(tmp_path, latency=0.4) as model_url:
        env = service_env(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", model_url)
        first = Service(env, tmp_path / "serve-1.log")
        task_id = first.generate()
        deadline = time.monotonic() + 60
        while not any(  # kill once the researcher finished and the writer is at work
            e["kind"] == "AGENT_STARTED" and e["agent"] == "linkedin_creator"
            for e in first.events(task_id)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.proc.kill()
        calls_before = len(stub_calls(model_url))

        second = Service(env, tmp_path / "serve-2.log")
        try:
            task = second.wait_for(task_id, "COMPLETED", "FAILED", timeout=60)
            assert task["status"] == "COMPLETED", task
            events = second.events(task_id)
            calls_of_the_task = len(stub_calls(model_url))
            full_run = second.wait_for(second.generate(), "COMPLETED")["usage"]["llmCalls"]
        finally:
            second.proc.stop()

    assert_one_clean_run(events)
    started = [e["agent"] for e in events if e["kind"] == "AGENT_STARTED"]
    assert started.count("paper_researcher") == 1  # finished before the crash: not re-run
    resumed = [e for e in events if e["kind"] == "TASK_RESUMED"]
    assert len(resumed) == 1 and resumed[0]["attempt"] == 2 == task["attempt"]
    assert resumed[0]["data"]["resumed_from"], resumed  # the node it resumed at
    after = events[events.index(resumed[0]) :]
    assert {e["attempt"] for e in after} == {2}
    assert calls_before < full_run  # the crash came mid-run
    assert calls_of_the_task < 2 * full_run


#: Tasks at once in the batched scenario (issue "Live progress": 50 concurrent tasks).
AT_ONCE = 50


async def _watch(client: GraphQLClient, task_id: str, seen: dict[str, list[dict]]) -> None:
    """Follow `task_id`'s taskProgress into `seen[task_id]` until the server goes away."""
    with contextlib.suppress(Exception):  # the kill ends the connection mid-stream
        async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
            seen[task_id].append(data["taskProgress"])


@pytest.mark.anyio
async def test_fifty_tasks_at_once_survive_kill_9_with_no_gap_and_nothing_seen_lost(
    tmp_path: Path,
) -> None:
    limits = {"MAX_CONCURRENT_GENERATIONS": str(AT_ONCE), "WORKER_CONCURRENCY": str(AT_ONCE)}
    with stub_model(tmp_path, latency=0.2) as model_url:
        env = service_env(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", model_url, **limits)
        first = Service(env, tmp_path / "serve-1.log")
        client = GraphQLClient(first.url)
        ids = [first.generate() for _ in range(AT_ONCE)]
        seen: dict[str, list[dict]] = {task_id: [] for task_id in ids}
        watchers = [asyncio.create_task(_watch(client, t, seen)) for t in ids]
        deadline = time.monotonic() + 120
        while sum(len(events) for events in seen.values()) < AT_ONCE * 10:  # all mid-run
            assert time.monotonic() < deadline, "the tasks did not get going"
            await asyncio.sleep(0.05)
        first.proc.kill()
        await asyncio.wait(watchers, timeout=10)

        second = Service(env, tmp_path / "serve-2.log")
        try:
            for task_id in ids:
                task = await asyncio.to_thread(second.wait_for, task_id, "COMPLETED", timeout=120)
                assert task["status"] == "COMPLETED"
            stored = {task_id: await asyncio.to_thread(second.events, task_id) for task_id in ids}
        finally:
            second.proc.stop()
    assert any(events and not events[-1]["isTerminal"] for events in seen.values())  # mid-run
    for task_id in ids:
        assert_one_clean_run(stored[task_id])  # gapless, one terminal event, COMPLETED
        by_seq = {e["seq"]: e for e in stored[task_id]}
        for event in seen[task_id]:  # what a client saw before the kill was committed
            assert by_seq[event["seq"]]["kind"] == event["kind"], (task_id, event)
            assert by_seq[event["seq"]]["message"] == event["message"], (task_id, event)
        assert [e["seq"] for e in seen[task_id]] == list(range(1, len(seen[task_id]) + 1))


PAUSE = "mutation($id: ID!) { pauseTask(id: $id) { status pauseRequested } }"
RESUME = "mutation($id: ID!) { resumeTask(id: $id) { status } }"
REVISE = """mutation($id: ID!) {
  revisePost(taskId: $id, feedback: "Shorter, and name the model size.") { id parentId } }"""


def test_a_pause_survives_kill_9_and_the_task_resumes_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    """A pause asked of a running task outlives a `kill -9` that comes before the run
    reached its node boundary: the restarted server's recovery runs the task on, it
    stops PAUSED at its first boundary, and `resumeTask` completes it; a follow-up
    revision of it then makes no research call on the stub model."""
    with stub_model(tmp_path, latency=0.4) as model_url:
        env = service_env(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", model_url)
        first = Service(env, tmp_path / "serve-1.log")
        task_id = first.generate()
        deadline = time.monotonic() + 60
        while not any(e["agent"] == "linkedin_creator" for e in first.events(task_id)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        asked = first.gql(PAUSE, id=task_id)["pauseTask"]
        assert asked == {"status": "RUNNING", "pauseRequested": True}
        first.proc.kill()  # mid-node: the writer is still at work

        second = Service(env, tmp_path / "serve-2.log")
        try:
            paused = second.wait_for(task_id, "PAUSED", "COMPLETED", "FAILED", timeout=60)
            assert paused["status"] == "PAUSED", paused
            time.sleep(1.0)
            assert second.task(task_id)["status"] == "PAUSED"  # it stays paused
            assert second.gql(RESUME, id=task_id)["resumeTask"]["status"] in ("PENDING", "RUNNING")
            done = second.wait_for(task_id, "COMPLETED", "FAILED", timeout=60)
            events = second.events(task_id)
            # A follow-up revision of the finished post: the stub sees no research call.
            before = len(stub_calls(model_url))
            child = second.gql(REVISE, id=task_id)["revisePost"]
            revised = second.wait_for(child["id"], "COMPLETED", "FAILED", timeout=60)
            revision_calls = stub_calls(model_url)[before:]
        finally:
            second.proc.stop()
    assert revised["status"] == "COMPLETED" and child["parentId"] == task_id, revised
    assert revision_calls and not [
        c for c in revision_calls if c["system"].startswith("You are PaperResearcher")
    ]
    assert done["status"] == "COMPLETED", done
    assert_one_clean_run(events)
    statuses = [e["status"] for e in events if e["kind"] == "TASK_STATUS"]
    assert statuses == ["RUNNING", "PAUSED", "PENDING", "RUNNING", "COMPLETED"]
    assert [e["kind"] for e in events].count("TASK_RESUMED") == 1  # the recovery after the kill
    started = [e["agent"] for e in events if e["kind"] == "AGENT_STARTED"]
    assert started.count("paper_researcher") == 1  # finished before the kill: not re-run
