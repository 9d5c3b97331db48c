"""The embedded default survives `kill -9`: one `postassist serve` on SQLite with a stub
model, killed during the Content team and started again, completes the task from its
checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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
