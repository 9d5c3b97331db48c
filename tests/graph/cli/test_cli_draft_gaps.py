"""The CLI's live draft never shows a hole: after a DRAFT_DELTA that does not follow the
last one (lost while the connection was down, or another attempt's), it waits for the
next `replace` before it shows text again."""

from __future__ import annotations

from typing import Any

from graph.cli.live_view import LiveView

TASK = {"createdAt": "2026-12-03T10:00:00+00:00", "status": "RUNNING", "teams": []}


def delta(index: int, text: str, *, replace: bool = False, attempt: int = 1) -> dict[str, Any]:
    return {
        "kind": "DRAFT_DELTA",
        "timestamp": "2026-12-03T10:00:01+00:00",
        "progress": 0.5,
        "team": "content_team",
        "agent": "linkedin_creator",
        "attempt": attempt,
        "data": {"text": text, "draft": 0, "index": index, "replace": replace},
    }


def test_a_skipped_index_holds_the_draft_until_the_next_replace() -> None:
    view = LiveView(TASK)
    for event in (delta(0, "Chinchilla", replace=True), delta(1, " has 70B")):
        view.update(event)
    assert view.draft == "Chinchilla has 70B"
    view.update(delta(3, " tokens."))  # index 2 was lost
    assert view.draft == "Chinchilla has 70B", "no text after a hole"
    view.update(delta(4, " More."))
    assert view.draft == "Chinchilla has 70B"
    view.update(delta(5, "The whole post.", replace=True))
    view.update(delta(6, " #LLM"))
    assert view.draft == "The whole post. #LLM"


def test_another_attempts_delta_does_not_extend_this_one() -> None:
    view = LiveView(TASK)
    view.update(delta(0, "First try", replace=True))
    view.update(delta(1, " goes on", attempt=2))
    assert view.draft == "First try"
