"""Where a run waits for a person: the review of the verified post (`human_review`, a
LangGraph `interrupt` after the meta-supervisor decides to finish) and a pause at a node
boundary (`pause_point`, which every supervisor awaits first).

Both stop the graph with `interrupt(...)`: the run ends with the interrupt in its
checkpoint (`agents.runtime.execution` then writes AWAITING_REVIEW or PAUSED), and a
later run on any worker resumes it with `Command(resume=answer)`. Nothing waits in
memory. A REVISE answer sends the post back to the Content team with the reviewer's
feedback; APPROVE and REJECT are written by `agents.runtime.control` without resuming
the graph (there is nothing left for it to do).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents.teams import plan
from agents.teams.nodes import Reporter, RunContext
from agents.teams.state import CONTENT_TEAM, PostState, draft_of
from db.enums import EventKind, ReviewDecision, ReviewMode
from db.events import TaskResult

#: The review node's name (a node of the meta graph, not an agent of a team).
HUMAN_REVIEW = "human_review"
#: `Interrupt.value["kind"]` of each reason a run stops for a person.
REVIEW, PAUSE = "review", "pause"


def review_needed(state: PostState) -> bool:
    """Whether the finished post waits for a person (`PostRequest.review`): ALWAYS; on
    ON_REJECTION when a verifier still rejects it (the meta-supervisor finishes a
    rejected post only when the revisions are used up, `plan.meta_options`); NEVER."""
    mode = ReviewMode(state["request"].get("review", ReviewMode.NEVER))
    if mode == ReviewMode.ALWAYS:
        return True
    return mode == ReviewMode.ON_REJECTION and not plan.is_approved(state)


async def pause_point(runtime: Runtime[RunContext]) -> None:
    """Stop the run here, before the node does anything, when `pauseTask` asked for it
    (`RunContext.pause_requested`). The node that called it runs again from its start
    when the run resumes; by then the request is cleared, so it goes on."""
    if await runtime.context.pause_requested():
        interrupt({"kind": PAUSE})


async def human_review(state: PostState, runtime: Runtime[RunContext]) -> Command[Any]:
    """Wait for the reviewer's answer to revision `state["revision"]`: an `interrupt`
    whose resume value is `{"decision": "REVISE", "feedback": str, "reviewer": str,
    "revision": int}` (`Task.pending_answer`; an answer to another revision is not this
    review's).
    REVISE starts another round of the Content team (then verification and, again,
    review) with the feedback and the post it is about; a resume without a decision (a
    retry of a review that timed out) asks again; any other answer ends the run (APPROVE
    and REJECT never reach here: `agents.runtime.control` writes them)."""
    revision = state.get("revision", 0)
    request = {"kind": REVIEW, "revision": revision}
    answer = interrupt(request)
    while answer.get("decision") is None or answer.get("revision", revision) != revision:
        # Resumed with no answer (a retry), or with one to another revision's review (a
        # crash after that answer's round reached this review): ask again.
        answer = interrupt(request)
    if answer.get("decision") != ReviewDecision.REVISE:
        return Command(goto=END)
    reporter = Reporter.of(runtime, team=None, agent=HUMAN_REVIEW)
    revision += 1
    feedback = str(answer.get("feedback") or "").strip()
    draft = draft_of(state)
    update: dict[str, Any] = {
        "revision": revision,
        "max_revisions": max(state.get("max_revisions", 0), revision),  # no automatic rounds
        "feedback": [f"the reviewer asks: {feedback}"],
        "previous_post": draft.content if draft else None,
        "research_round": revision,  # the notes stand: only the post is rewritten
        "reports": [],
        "next": CONTENT_TEAM,
    }
    await reporter.emit(
        EventKind.MESSAGE,
        f"revision {revision} requested by {answer.get('reviewer') or 'the reviewer'}",
        data={"revision": revision, "feedback": feedback, "source": "review"},
        progress=plan.progress({**state, **update}),  # type: ignore[typeddict-item]
        result=TaskResult(revisions=revision),
    )
    await runtime.context.flush()
    return Command(goto=CONTENT_TEAM, update=update)
