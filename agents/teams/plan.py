"""The default plan and which routing decisions are valid in a state.

Default plan: research -> write -> verify (technical, then style) -> finish; after a
rejected verification, revise (write again, verify again) while `revision <
max_revisions`. Supervisors may choose among the valid options; anything else falls
back to the default. Every valid option makes progress, so the graph terminates.
"""

from __future__ import annotations

from agents.teams.state import (
    CONTENT_TEAM,
    FINISH,
    LINKEDIN_CREATOR,
    PAPER_RESEARCHER,
    STYLE_CHECKER,
    TECH_VERIFIER,
    VERIFICATION_TEAM,
    PostState,
    reports_of,
)
from db.enums import OrchestrationMode

VERIFIERS = (TECH_VERIFIER, STYLE_CHECKER)
#: The Verification team supervisor's decision to run every pending verifier at once
#: (PARALLEL mode): a LangGraph fan-out, joined back at the supervisor.
ALL_VERIFIERS = "all_verifiers"


def runs_in_parallel(state: PostState) -> bool:
    """Whether the request asks for the verifiers to run at once (`orchestration_mode`)."""
    return state["request"].get("orchestration_mode") == OrchestrationMode.PARALLEL


def draft_is_current(state: PostState) -> bool:
    """True when a draft exists for the current revision round."""
    return state.get("draft") is not None and state.get("draft_round", -1) >= state.get(
        "revision", 0
    )


def verified_by(state: PostState) -> set[str]:
    """The verifier agents that reported on the current draft."""
    return {r.agent for r in reports_of(state)}


def is_approved(state: PostState) -> bool:
    """True when every verifier reported on the current draft and all approved it."""
    reports = reports_of(state)
    return verified_by(state) >= set(VERIFIERS) and all(r.approved for r in reports)


def nothing_to_revise(state: PostState) -> bool:
    """True when a report found NOTHING_SAID (`agents.checks.verdicts`): the request gave
    nothing to write from, and research never fetches again, so a revision could only
    say nothing once more."""
    return any(
        finding.get("kind") == "NOTHING_SAID"
        for report in reports_of(state)
        for finding in report.checks.get("findings") or []
    )


def meta_options(state: PostState) -> list[str]:
    """Valid next steps for the meta-supervisor; the first is the default plan's. A
    rejected post goes back for a revision while revisions are left, unless
    `nothing_to_revise`."""
    if not draft_is_current(state):
        return [CONTENT_TEAM]
    if not verified_by(state) >= set(VERIFIERS):
        return [VERIFICATION_TEAM]
    if is_approved(state):
        return [FINISH]
    if state.get("revision", 0) < state.get("max_revisions", 0) and not nothing_to_revise(state):
        return [CONTENT_TEAM, FINISH]
    return [FINISH]


def content_options(state: PostState) -> list[str]:
    """Valid next steps for the Content team's supervisor; the first is the default.

    In a revision round, the notes may be redone before the post is rewritten.
    """
    if state.get("research") is None:
        return [PAPER_RESEARCHER]
    if not draft_is_current(state):
        if state.get("revision", 0) > 0 and state.get("research_round", -1) < state["revision"]:
            return [LINKEDIN_CREATOR, PAPER_RESEARCHER]
        return [LINKEDIN_CREATOR]
    return [FINISH]


def pending_verifiers(state: PostState) -> list[str]:
    """The verifiers that have not reported on the current draft, in plan order."""
    return [agent for agent in VERIFIERS if agent not in verified_by(state)]


def steps_after(agent: str, state: PostState) -> int:
    """`steps_done` once `agent` finished, from the `state` it started in: one more; for
    a verifier that runs at once with others (PARALLEL), one more than its place among
    them, so the greatest of their counts (the reducer's) counts them all."""
    done = state.get("steps_done", 0)
    pending = pending_verifiers(state)
    if agent in pending and len(pending) > 1 and runs_in_parallel(state):
        return done + 1 + pending.index(agent)
    return done + 1


def verification_options(state: PostState) -> list[str]:
    """Valid next steps for the Verification team's supervisor; the first is the default.

    Verifiers that already reported on the current draft are not run again. In PARALLEL
    mode, two or more pending verifiers run at once: the only option is ALL_VERIFIERS.
    """
    pending = pending_verifiers(state)
    if len(pending) > 1 and runs_in_parallel(state):
        return [ALL_VERIFIERS]
    return pending or [FINISH]


def team_options(team: str, state: PostState) -> list[str]:
    """Valid next steps for `team`'s supervisor; the first is the default."""
    return content_options(state) if team == CONTENT_TEAM else verification_options(state)


def remaining_agents(state: PostState) -> list[str]:
    """The agent runs the default plan still needs from `state` (for progress)."""
    remaining = []
    if state.get("research") is None:
        remaining.append(PAPER_RESEARCHER)
    if not draft_is_current(state):
        remaining.append(LINKEDIN_CREATOR)
        remaining.extend(VERIFIERS)
    else:
        remaining.extend(a for a in VERIFIERS if a not in verified_by(state))
    return remaining


def progress(state: PostState) -> float:
    """Agents done out of agents planned, 0..0.99 (1.0 only when the task completes)."""
    done = state.get("steps_done", 0)
    planned = done + len(remaining_agents(state))
    return round(min(0.99, done / planned), 4) if planned else 0.99
