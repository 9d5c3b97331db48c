"""The supervisors: the meta-supervisor over the teams, and each team's supervisor.

Each asks the model for the next step as structured output, keeps the choice only when
`agents.teams.plan` says it is valid now, and otherwise falls back to the default plan. The
team supervisors also report when their team starts and finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from agents.teams import plan, prompts, review
from agents.teams.nodes import Node, Reporter, RunContext
from agents.teams.state import (
    CONTENT_TEAM,
    FINISH,
    META_SUPERVISOR,
    SUPERVISORS,
    TEAMS,
    VERIFICATION_TEAM,
    PostState,
    reports_of,
)
from db.enums import EventKind
from db.events import TaskResult

#: Each team supervisor's prompt.
TEAM_PROMPTS = {
    CONTENT_TEAM: prompts.CONTENT_SUPERVISOR,
    VERIFICATION_TEAM: prompts.VERIFICATION_SUPERVISOR,
}


def route_model(options: Sequence[str]) -> type[BaseModel]:
    """Return a Pydantic model `Route{next: Literal[options], reason: str}` for a
    supervisor's structured decision."""
    return create_model(
        "Route",
        __doc__="The supervisor's decision: who works next, and why.",
        next=(Literal[tuple(options)], Field(description="the next step")),  # type: ignore[valid-type]
        reason=(str, Field(description="one sentence")),
    )


@dataclass
class Decision:
    """A supervisor's routing decision; `source` is "model", "fallback" or "plan"
    (only one option was valid, so no model was asked)."""

    next: str
    reason: str
    source: str


async def _ask(
    reporter: Reporter, *, prompt: str, names: Sequence[str], options: list[str], situation: str
) -> Decision:
    if len(options) == 1:
        return Decision(options[0], f"the only valid step: {situation}", "plan")
    text = prompt.format(situation=situation, options=", ".join(options))
    parsed, why = await reporter.judge(
        route_model(names), [SystemMessage(text), HumanMessage("Decide now.")], purpose="routing"
    )
    if parsed is None:
        return Decision(options[0], f"fallback to the plan: {why}", "fallback")
    if parsed.next not in options:
        reason = (
            f"fallback to the plan: '{parsed.next}' is not valid now (valid: {', '.join(options)})"
        )
        return Decision(options[0], reason, "fallback")
    return Decision(parsed.next, parsed.reason.strip()[:300] or "-", "model")


async def decide(
    reporter: Reporter,
    state: PostState,
    *,
    prompt: str,
    names: Sequence[str],
    options: list[str],
    situation: str,
) -> Decision:
    """Ask the model to choose among `names`; keep its choice when it is one of the
    valid `options`, otherwise fall back to `options[0]` (the default plan). With one
    valid option the model is not asked. Reports a ROUTING event."""
    if options == [plan.ALL_VERIFIERS]:  # PARALLEL: nothing to choose
        pending = ", ".join(plan.pending_verifiers(state))
        decision = Decision(plan.ALL_VERIFIERS, f"PARALLEL: {pending} at once", "plan")
    else:
        decision = await _ask(
            reporter, prompt=prompt, names=names, options=options, situation=situation
        )
    await reporter.emit(
        EventKind.ROUTING,
        f"{reporter.agent} -> {decision.next}: {decision.reason}",
        data={
            "next": decision.next,
            "reason": decision.reason,
            "source": decision.source,
            "options": options,
            "situation": situation,  # the plan's view: what a client shows for noise
        },
        progress=plan.progress(state),
    )
    return decision


async def meta_supervisor(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Send the work to a team, or finish; a rejected post may go back for a revision
    (up to `max_revisions`) with the verifiers' issues as feedback. A node boundary:
    the run stops here first when it was asked to pause (`review.pause_point`)."""
    await review.pause_point(runtime)
    reporter = Reporter.of(runtime, team=None, agent=META_SUPERVISOR)
    decision = await decide(
        reporter,
        state,
        prompt=prompts.META_SUPERVISOR,
        names=[CONTENT_TEAM, VERIFICATION_TEAM, FINISH],
        options=plan.meta_options(state),
        situation=_meta_situation(state),
    )
    update: dict[str, Any] = {"next": decision.next}
    if decision.next == CONTENT_TEAM and plan.draft_is_current(state):
        revision = state.get("revision", 0) + 1
        rejected = [r for r in reports_of(state) if not r.approved]
        feedback = [issue for report in rejected for issue in report.issues]
        update.update(revision=revision, feedback=feedback, reports=[])
        await reporter.emit(
            EventKind.MESSAGE,
            f"revision {revision} requested: {len(feedback)} issues",
            data={"revision": revision, "feedback": feedback[:10]},
            progress=plan.progress({**state, **update}),  # type: ignore[typeddict-item]
            result=TaskResult(revisions=revision),
        )
    await runtime.context.flush()
    return update


def team_supervisor(team: str) -> Node:
    """The supervisor node of `team`. On entry (the last decision was not one of this
    team's agents) it reports TEAM_STARTED; when it decides FINISH, TEAM_FINISHED."""
    agents, supervisor = TEAMS[team], SUPERVISORS[team]

    async def supervise(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        await review.pause_point(runtime)  # a node boundary: after each agent of the team
        reporter = Reporter.of(runtime, team=team, agent=supervisor)
        if state.get("next") not in agents:
            await reporter.emit(EventKind.TEAM_STARTED, f"{team} started", agent=None)
        decision = await decide(
            reporter,
            state,
            prompt=TEAM_PROMPTS[team],
            names=[*agents, FINISH],
            options=plan.team_options(team, state),
            situation=_team_situation(team, state),
        )
        if decision.next == FINISH:
            # The team's reports, all of them: PARALLEL verifiers each stored only their own.
            reports = reports_of(state) if team == VERIFICATION_TEAM else None
            await reporter.emit(
                EventKind.TEAM_FINISHED,
                f"{team} finished",
                agent=None,
                progress=plan.progress(state),
                result=TaskResult(verification_reports=reports) if reports else None,
            )
        await runtime.context.flush()
        return {"next": decision.next}

    supervise.__name__ = supervisor
    return supervise


def _meta_situation(state: PostState) -> str:
    if not plan.draft_is_current(state):
        return "no post for this round yet"
    if not plan.verified_by(state) >= set(plan.VERIFIERS):
        return "a post is written and needs verification"
    issues = [i for r in reports_of(state) for i in r.issues]
    verdict = "approved" if plan.is_approved(state) else "not approved"
    return (
        f"verification {verdict}; issues: {'; '.join(issues[:5]) or 'none'}; "
        f"revision {state.get('revision', 0)} of at most {state.get('max_revisions', 0)}"
    )


def _team_situation(team: str, state: PostState) -> str:
    if team == VERIFICATION_TEAM:
        done = sorted(plan.verified_by(state))
        return f"a draft is ready; reports so far: {', '.join(done) or 'none'}"
    if state.get("research") is None:
        return "nothing researched yet"
    if plan.draft_is_current(state):
        return "the post for this round is written"
    if state.get("revision", 0):
        return "revision requested; feedback: " + "; ".join((state.get("feedback") or [])[:3])
    return "research notes are ready, no post yet"
