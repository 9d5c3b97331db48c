"""OpenTelemetry: a scripted generation exported to an in-memory exporter has one span
per agent of the run and one per model call with its tokens (gen_ai.*), all in the
task's trace, beside the HTTP and GraphQL spans of the API; off, nothing is set up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from db import repository
from db.enums import EventKind
from graph.app import create_app
from graph.settings import Settings
from graph.telemetry.tracing import setup_tracing, shutdown_tracing
from tests.fakes import scripted
from tests.graph.api.test_api import generate
from tests.graph.conftest import GQL

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter(sqlite_url: str) -> Iterator[Any]:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    shutdown_tracing()
    memory = InMemorySpanExporter()
    settings = Settings(otel_exporter_otlp_endpoint="http://127.0.0.1:9", _env_file=None)
    setup_tracing(settings, exporter=memory)
    try:
        yield memory
    finally:
        shutdown_tracing()


@pytest.fixture
def app(sqlite_url: str, exporter: Any) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        follow_poll_seconds=0.5,
        otel_exporter_otlp_endpoint="http://127.0.0.1:9",
        _env_file=None,
    )
    return create_app(
        settings, model_factory=lambda: scripted(verification_order=["style_checker"])
    )


async def test_a_run_is_one_trace_with_a_span_per_agent_and_per_model_call(
    gql: GQL, app: FastAPI, exporter: Any
) -> None:
    task_id = await generate(gql)
    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
    async with app.state.services.session_factory() as session:
        events = await repository.list_agent_logs(
            session=session, task_id=task_id, after_seq=0, limit=500
        )
    setup_tracing(app.state.services.settings).force_flush()
    spans = exporter.get_finished_spans()

    (root,) = [s for s in spans if s.attributes.get("postassist.task.id") == task_id]
    assert (
        root.name == "postassist.task" and root.attributes["postassist.task.outcome"] == "completed"
    )
    in_run = [s for s in spans if s.context.trace_id == root.context.trace_id]
    by_id = {s.context.span_id: s for s in in_run}

    agents = [s for s in in_run if s.name.startswith("invoke_agent ")]
    started = [e.agent for e in events if e.kind == EventKind.AGENT_STARTED]
    assert sorted(s.attributes["gen_ai.agent.name"] for s in agents) == sorted(started)
    for span in agents:
        parent = by_id[span.parent.span_id]
        assert parent.name.startswith("team ") or parent is root

    calls = [s for s in in_run if s.attributes.get("gen_ai.operation.name") == "chat"]
    usage = [e for e in events if e.kind == EventKind.LLM_USAGE]
    assert len(calls) == len(usage) >= 3
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in calls) == sum(
        e.data["input_tokens"] for e in usage
    )
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in calls) == sum(
        e.data["output_tokens"] for e in usage
    )
    assert all(s.attributes["gen_ai.request.model"] for s in calls)
    assert all(s.parent is not None and s.parent.span_id in by_id for s in calls)
    writer = [s for s in calls if by_id[s.parent.span_id].name == "invoke_agent linkedin_creator"]
    assert writer, [by_id[s.parent.span_id].name for s in calls]

    # the API's own: FastAPI's server spans and Strawberry's operation spans
    assert any(s.name.startswith("POST /graphql") for s in spans), {s.name for s in spans}
    assert any(s.name.startswith("GraphQL Query") for s in spans)


def test_off_nothing_is_installed_and_the_exporters_are_not_imported(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from graph.app import create_app\n"
        "from graph.settings import Settings\n"
        "from agents.telemetry.tracing import tracer\n"
        f"url = 'sqlite+aiosqlite:///{tmp_path}/x.db'\n"
        "app = create_app(Settings(database_url=url, _env_file=None))\n"
        "assert tracer() is None\n"
        "names = ('opentelemetry.exporter.otlp.proto.http.trace_exporter',\n"
        "         'opentelemetry.instrumentation.fastapi',\n"
        "         'strawberry.extensions.tracing.opentelemetry')\n"
        "print([n for n in names if n in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
