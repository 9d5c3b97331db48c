"""What a run starts from and what its stops are written as: the state a follow-up
revision starts from (`revision_state`), the COMPLETED event (`completed_event`, also
written by an approving review), and the events of a run that stopped for a person
(`stopped_event`: AWAITING_REVIEW or PAUSED)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.types import Interrupt

from agents.teams import review
from agents.teams.state import PostState, initial_state
from db.enums import TaskStatus
from db.events import MAX_DATA_STRING, Event, TaskResult
from db.models import PostRequest, Task


def verdict(reports: Sequence[Mapping[str, Any]]) -> tuple[bool, list[str]]:
    """`(approved, open_issues)` of a post's verification reports (as stored: dicts with
    `approved` and `issues`): approved when there are reports and none rejects; the
    issues of the rejecting ones."""
    rejected = [r for r in reports if not r["approved"]]
    return bool(reports) and not rejected, [issue for r in rejected for issue in r["issues"]]


def completed_event(
    *,
    reports: Sequence[Mapping[str, Any]],
    revisions: int,
    content: str,
    message: str = "completed",
    data: Mapping[str, Any] | None = None,
    result: Mapping[str, Any] | None = None,
) -> Event:
    """TASK_STATUS COMPLETED for a post `content` with its `reports`: data `approved`,
    `revisions`, `characters` (and `data`), the verdict and the revisions stored on the
    task (and the columns of `result`, e.g. an edited post's content and hashtags)."""
    approved, open_issues = verdict(reports)
    summary = {"approved": approved, "revisions": revisions, "characters": len(content)}
    outcome = TaskResult(
        approved=approved, open_issues=open_issues, revisions=revisions, **(result or {})
    )
    return Event.task_status(
        TaskStatus.COMPLETED, message, data={**summary, **(data or {})}, progress=1.0,
        result=outcome,
    )  # fmt: skip


def paragraphs(content: str) -> list[str]:
    """`content` split at its blank lines, so an event's `data` carries a whole post
    (each string in `data` is cut at `db.events.MAX_DATA_STRING` characters; a LinkedIn
    paragraph is shorter): `"\\n\\n".join(paragraphs(c)) == c` when none is longer."""
    return content.split("\n\n")


def stopped_event(stop: Interrupt, values: Mapping[str, Any], *, progress: float) -> Event:
    """The event of a run that stopped at `stop` (the graph's interrupt), with the
    state `values` it stopped in: AWAITING_REVIEW with the revision, the draft
    (`draft.paragraphs`, `draft.hashtags`), both reports (agent, approved, score,
    issues) and the open issues; or PAUSED naming the node it resumes at."""
    kind = stop.value.get("kind")
    if kind == review.PAUSE:
        return Event.task_status(
            TaskStatus.PAUSED, "paused", data={"paused": True}, progress=progress
        )
    if kind != review.REVIEW:
        raise ValueError(f"the graph stopped at an interrupt PostAssist did not make: {kind!r}")
    reports = values.get("reports") or []
    approved, open_issues = verdict(reports)
    draft = values.get("draft") or {}
    revision = values.get("revision", 0)
    data = {
        "revision": revision,
        "draft": {"paragraphs": paragraphs(draft.get("content") or ""),
                  "hashtags": draft.get("hashtags") or []},
        "reports": [
            {k: r.get(k) for k in ("agent", "approved", "score", "issues")} for r in reports
        ],
        "approved": approved,
        "open_issues": open_issues,
    }  # fmt: skip
    message = f"revision {revision} awaits review ({'approved' if approved else 'rejected'})"
    result = TaskResult(approved=approved, open_issues=open_issues, revisions=revision)
    return Event.task_status(
        TaskStatus.AWAITING_REVIEW, message[:MAX_DATA_STRING], data=data, progress=progress,
        result=result,
    )  # fmt: skip


def revision_state(parent: Task, child: Task, feedback: str, *, max_revisions: int) -> PostState:
    """The state a follow-up revision (`revisePost`) of the COMPLETED `parent` starts
    from, as task `child`: the parent's request, its research notes (research is not
    repeated), its post as the previous draft and the reviewer's `feedback`, one
    revision on (`revision` = the parent's + 1), with `max_revisions` more automatic
    rounds after it."""
    request = PostRequest.model_validate(child, from_attributes=True)
    revision = parent.revisions + 1
    state = initial_state(request, max_revisions=revision + max_revisions)
    state.update(
        research=parent.research_notes,
        research_round=revision,  # current: the Content team writes, it does not research
        draft={"content": parent.content or "", "hashtags": list(parent.hashtags or [])},
        draft_round=parent.revisions,
        revision=revision,
        feedback=[f"the reviewer asks: {feedback}"],
        previous_post=parent.content,
    )
    return state
