"""Multiprocess mode: with PROMETHEUS_MULTIPROC_DIR in the environment, two processes'
counters add up in one exposition, and a process that marked itself exited leaves its
live gauges out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]

COUNT = """
import os
from agents.telemetry.metrics import LLM_CALLS
from graph.settings import Settings
from graph.telemetry.endpoint import mark_exited
from graph.telemetry.metrics import WEBSOCKET_CONNECTIONS
LLM_CALLS.labels("linkedin_creator").inc({n})
WEBSOCKET_CONNECTIONS.inc()
if {exited}:
    mark_exited(Settings(_env_file=None))
"""

SCRAPE = """
from graph.settings import Settings
from graph.telemetry.endpoint import _exposition, multiprocess_active
settings = Settings(_env_file=None)
assert multiprocess_active(settings)
print(_exposition(settings.prometheus_multiproc_dir, {{"PENDING": 3}}).decode())
"""


def _python(code: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_processes_counters_add_up_and_an_exited_ones_gauges_drop(tmp_path: Path) -> None:
    _python(COUNT.format(n=2, exited=False), tmp_path)
    _python(COUNT.format(n=3, exited=True), tmp_path)
    text = _python(SCRAPE.format(), tmp_path)
    seen = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert seen[("postassist_llm_calls_total", (("agent", "linkedin_creator"),))] == 5
    # livesum: the first process never marked itself exited, the second did
    assert seen[("postassist_websocket_connections", ())] == 1
    assert seen[("postassist_queue_depth", ())] == 3
