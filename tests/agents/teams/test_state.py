"""The graph state holds plain JSON with the keys earlier versions wrote: a checkpoint
taken mid-run by them (notes without `fetched`, reports as dicts) resumes, and the
typed accessors read it."""

from __future__ import annotations

from typing import Any

import pytest

from agents.teams.hierarchy import RECURSION_LIMIT, build_graph
from agents.teams.nodes import RunContext
from agents.teams.state import (
    PostState,
    draft_of,
    initial_state,
    reports_of,
    request_of,
    research_of,
)
from db.enums import EventKind
from db.events import Event
from db.models import PostRequest
from tests.fakes import scripted

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(
    paper_title="Attention Is All You Need",
    additional_context="The Transformer relies on attention alone. It reaches 28.4 BLEU on "
    "WMT 2014 English-to-German.",
)
#: Notes as research wrote them before it fetched real sources: no `fetched` key.
OLD_NOTES: dict[str, Any] = {
    "summary": "A model built on attention only.",
    "key_insights": ["The Transformer relies on attention alone."],
    "metrics": ["28.4"],
    "limitations": ["Quadratic cost in sequence length."],
    "sources": [{"kind": "request", "title": REQUEST.paper_title, "characters": 85}],
    "source_note": "No external source (arXiv, Tavily) is configured.",
}


def test_the_accessors_read_the_plain_state() -> None:
    state: PostState = {
        **initial_state(REQUEST, max_revisions=0),
        "research": OLD_NOTES,
        "draft": {"content": "A post.", "hashtags": []},
        "reports": [
            {"agent": "tech_verifier", "kind": "TECHNICAL", "score": 1.0, "approved": True}
        ],
    }
    notes = research_of(state)
    assert notes is not None and notes.fetched is None and notes.metrics == ["28.4"]
    assert request_of(state) == REQUEST  # nothing fetched: the request as given
    assert draft_of(state) is not None and draft_of(state).content == "A post."  # type: ignore[union-attr]
    (report,) = reports_of(state)
    assert report.approved and report.issues == [] and report.checks == {}
    fresh = initial_state(REQUEST, max_revisions=0)
    assert research_of(fresh) is None and draft_of(fresh) is None and reports_of(fresh) == []


async def test_a_run_resumes_from_a_state_with_old_notes() -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    state = {
        **initial_state(REQUEST, max_revisions=0),
        "research": OLD_NOTES,
        "research_round": 0,
        "steps_done": 1,
    }
    out = await build_graph().ainvoke(
        state, {"recursion_limit": RECURSION_LIMIT}, context=RunContext(model=scripted(), emit=emit)
    )
    finished = [e.agent for e in events if e.kind == EventKind.AGENT_FINISHED]
    assert "paper_researcher" not in finished  # the notes were taken as they were
    assert out["research"] == OLD_NOTES
    assert out["draft"]["content"] and {r["agent"] for r in out["reports"]} == {
        "tech_verifier",
        "style_checker",
    }
    writer = next(e for e in events if e.agent == "linkedin_creator" and e.result is not None)
    assert writer.result is not None and writer.result.content == out["draft"]["content"]
