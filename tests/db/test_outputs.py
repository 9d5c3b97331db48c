"""The typed agent outputs load every shape stored rows and checkpoints hold, and dump
back to the same JSON; an event's task columns are a closed, typed list."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from db.enums import EventKind, FailureCode, TaskStatus
from db.events import Event, TaskResult
from db.models import Task
from db.outputs import PostDraft, ResearchNotes, VerificationReport

PAPER = {
    "arxiv_id": "1706.03762v7",
    "title": "Attention Is All You Need",
    "authors": ["Ashish Vaswani", "Noam Shazeer"],
    "abstract": "The dominant sequence transduction models are based on ...",
    "published": "2017-06-12T17:57:34Z",
    "updated": "2023-08-02T00:41:18Z",
    "primary_category": "cs.CL",
    "url": "https://arxiv.org/abs/1706.03762",
    "pdf_url": "https://arxiv.org/pdf/1706.03762v7",
}
#: Research notes as the agents wrote them before the models existed: a fetched paper,
#: a web result, a failed attempt and a skipped source.
NOTES: dict[str, Any] = {
    "summary": "The Transformer relies on attention alone.",
    "key_insights": ["The Transformer relies on attention alone."],
    "metrics": ["28.4", "41.8"],
    "limitations": [],
    "sources": [
        {"kind": "request", "title": "1706.03762", "characters": 0},
        {
            "kind": "arxiv",
            "id": "1706.03762v7",
            "title": "Attention Is All You Need",
            "url": "https://arxiv.org/abs/1706.03762",
            "published": "2017-06-12",
            "characters": 57,
        },
        {"kind": "web", "title": "Transformer", "url": "https://example.org/t", "characters": 9},
    ],
    "source_note": "Fetched from arXiv: 1706.03762v7 ...",
    "fetched": {
        "arxiv_id": "1706.03762",
        "paper": PAPER,
        "web": [{"title": "Transformer", "url": "https://example.org/t", "content": "A snippet"}],
        "attempts": [
            {"source": "arxiv", "query": "1706.03762", "ok": True, "error": None, "seconds": 0.2},
            {"source": "web", "query": "x", "ok": False, "error": "Tavily failed", "seconds": 1.0},
        ],
        "skipped": ["Web search is off: no TAVILY_API_KEY is set."],
    },
}
REPORT: dict[str, Any] = {
    "agent": "tech_verifier",
    "kind": "TECHNICAL",
    "score": 0.75,
    "approved": False,
    "issues": ["unsupported claim: ..."],
    "checks": {"findings": [{"kind": "NUMBER", "issue": "...", "hard": True}], "sentences": 4},
    "model_judgement": True,
    "model_judgement_error": None,
}


def test_the_outputs_dump_back_to_the_json_the_agents_wrote() -> None:
    for model, data in ((ResearchNotes, NOTES), (VerificationReport, REPORT)):
        dumped = model.model_validate(data).model_dump(mode="json")
        assert dumped == data
        assert list(dumped) == list(data)  # the same keys in the same order
    draft = {"content": "A post.", "hashtags": ["AI"]}
    assert PostDraft.model_validate(draft).model_dump(mode="json") == draft


@pytest.mark.parametrize(
    "stored",
    [
        {k: v for k, v in NOTES.items() if k != "fetched"},  # before research fetched
        {**NOTES, "fetched": None},
        {"summary": "only a summary"},
        {**NOTES, "fetched": {**NOTES["fetched"], "paper": None, "web": []}},
    ],
    ids=["no-fetched", "fetched-none", "summary-only", "nothing-fetched"],
)
def test_older_and_partial_notes_load(stored: dict[str, Any]) -> None:
    notes = ResearchNotes.model_validate(stored)
    assert notes.summary == stored["summary"]
    assert notes.paper is None


def test_a_paper_gives_its_dates() -> None:
    paper = ResearchNotes.model_validate(NOTES).paper
    assert paper is not None and paper.published_at is not None
    assert paper.published_at.isoformat() == "2017-06-12T17:57:34+00:00"
    bare = ResearchNotes.model_validate({"fetched": {"paper": {**PAPER, "updated": ""}}})
    assert bare.paper is not None and bare.paper.updated_at is None


def test_an_older_report_loads() -> None:
    older = {k: v for k, v in REPORT.items() if k != "model_judgement_error"}
    report = VerificationReport.model_validate(older)
    assert report.model_judgement_error is None and report.checks == REPORT["checks"]
    with pytest.raises(ValidationError):
        VerificationReport.model_validate({**REPORT, "kind": "OTHER"})


def test_a_result_names_only_task_columns_and_an_unknown_one_fails_at_construction() -> None:
    assert set(TaskResult.model_fields) <= set(Task.model_fields)
    with pytest.raises(ValueError, match="status"):
        TaskResult.model_validate({"status": "COMPLETED"})
    with pytest.raises(ValueError, match="bogus"):
        Event(EventKind.MESSAGE, result={"bogus": 1})
    with pytest.raises(ValueError):
        Event(EventKind.MESSAGE, result={"revisions": "many"})


def test_a_result_sets_the_columns_it_was_given_and_no_other() -> None:
    task = Task(paper_title="Attention Is All You Need", content="kept", revisions=3)
    notes = ResearchNotes.model_validate(NOTES)
    TaskResult(research_notes=notes, approved=None).apply(task)
    assert task.research_notes == NOTES  # stored as its JSON
    assert (task.content, task.revisions, task.approved) == ("kept", 3, None)
    event = Event.task_status(
        TaskStatus.FAILED, result={"error": "boom", "error_code": FailureCode.TIMEOUT}
    )
    assert event.result is not None
    event.result.apply(task)
    assert (task.error, task.error_code) == ("boom", "TIMEOUT")
    TaskResult(verification_reports=[VerificationReport.model_validate(REPORT)]).apply(task)
    assert task.verification_reports == [REPORT]
