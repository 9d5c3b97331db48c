"""State shared by the meta graph and both team subgraphs, and the team structure."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from agents.teams.fetched_text import effective_request
from db.models import PostRequest
from db.outputs import PostDraft, ResearchNotes, VerificationReport
from db.snapshot import Teams

META_SUPERVISOR = "meta_supervisor"
CONTENT_TEAM = "content_team"
VERIFICATION_TEAM = "verification_team"
CONTENT_SUPERVISOR = "content_supervisor"
VERIFICATION_SUPERVISOR = "verification_supervisor"
PAPER_RESEARCHER = "paper_researcher"
LINKEDIN_CREATOR = "linkedin_creator"
TECH_VERIFIER = "tech_verifier"
STYLE_CHECKER = "style_checker"
FINISH = "FINISH"

#: The static structure: team name -> its agents, in default-plan order.
TEAMS: dict[str, tuple[str, ...]] = {
    CONTENT_TEAM: (PAPER_RESEARCHER, LINKEDIN_CREATOR),
    VERIFICATION_TEAM: (TECH_VERIFIER, STYLE_CHECKER),
}
#: Display names, as the PostAssist design calls them.
DISPLAY_NAMES: dict[str, str] = {
    META_SUPERVISOR: "Meta-supervisor",
    CONTENT_TEAM: "Content team",
    VERIFICATION_TEAM: "Verification team",
    PAPER_RESEARCHER: "PaperResearcher",
    LINKEDIN_CREATOR: "LinkedInCreator",
    TECH_VERIFIER: "TechVerifier",
    STYLE_CHECKER: "StyleChecker",
}
#: What each agent does, for `teams` in the API and for prompts.
ROLES: dict[str, str] = {
    PAPER_RESEARCHER: "research notes: summary, key insights, metrics, limitations, sources",
    LINKEDIN_CREATOR: "the post: hook, body, key takeaways, question, hashtags",
    TECH_VERIFIER: "technical accuracy report (score 0..1, issues, approved)",
    STYLE_CHECKER: "LinkedIn style report (score 0..1, issues, approved)",
}


def greatest(current: int | None, update: int | None) -> int:
    """The `steps_done` reducer: the greater of the two counts (a missing one is 0)."""
    return max(current or 0, update or 0)


def merge_reports(
    current: list[dict[str, Any]] | None, update: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The `reports` reducer: `update`'s reports replace those of the same agents and the
    others stay, in order (so two verifiers reporting in one step keep both); an empty
    `update` clears them all (the meta-supervisor's or a reviewer's new round)."""
    if not update:
        return []
    agents = {report["agent"] for report in update}
    return [r for r in current or [] if r["agent"] not in agents] + list(update)


class PostState(TypedDict, total=False):
    """The graph state. Every team reads and writes the same keys; every value is plain
    JSON (checkpoints store it), the agents' outputs as their `db.outputs` model's
    `model_dump(mode="json")`, read back with the accessors below.

    - `revision`: 0 for the first draft, +1 each time the meta-supervisor sends the
      post back; `max_revisions` bounds it.
    - `research_round` / `draft_round`: the `revision` the notes / draft were made in.
    - `reports`: verification reports of the current draft, one per verifier agent;
      merged by agent (`merge_reports`: the two verifiers may report in one step, in
      PARALLEL mode), an empty list clears them (a new round).
    - `feedback`: issues from the rejected reports, for the Content team's next round.
    - `steps_done`: agent runs finished so far (for progress from the plan); the
      greatest count written wins (`greatest`: a team subgraph hands back the count its
      nodes reached, and PARALLEL verifiers write distinct counts,
      `plan.steps_after`).
    - `next`: the last routing decision of whichever supervisor ran last.
    - `request`: the `PostRequest`; read it with `request_of(state)` (with the fetched
      sources) or `given_request_of(state)`.
    - `research`: the PaperResearcher's `ResearchNotes` (`research_of`); their
      `fetched` keeps what it fetched, so a resumed run never fetches again.
    - `draft`: the LinkedInCreator's `PostDraft` (`draft_of`).
    - `reports`: `VerificationReport`s (`reports_of`).
    - `previous_post`: the post a person asked to change (a review's REVISE, or
      `revisePost`), for the Content team's prompts; None otherwise.
    - `research_key`, `research_call`, `research_origin`: the PaperResearcher's node
      cache key, the id of its current call, and where its notes came from (the call
      they answered, the task that computed them): `agents.teams.researcher`.
    """

    request: dict[str, Any]
    research: dict[str, Any] | None
    research_round: int
    draft: dict[str, Any] | None
    draft_round: int
    reports: Annotated[list[dict[str, Any]], merge_reports]
    feedback: list[str]
    revision: int
    max_revisions: int
    steps_done: Annotated[int, greatest]
    next: str
    previous_post: str | None
    research_key: str
    research_call: str
    research_origin: dict[str, Any]


#: Each team's supervisor.
SUPERVISORS: dict[str, str] = {
    CONTENT_TEAM: CONTENT_SUPERVISOR,
    VERIFICATION_TEAM: VERIFICATION_SUPERVISOR,
}
#: Each agent's team.
TEAM_OF: dict[str, str] = {agent: team for team, agents in TEAMS.items() for agent in agents}


def initial_state(request: PostRequest, *, max_revisions: int) -> PostState:
    """Return the state a generation starts from (nothing researched or written)."""
    return PostState(
        request=request.model_dump(mode="json"),
        research=None,
        research_round=-1,
        draft=None,
        draft_round=-1,
        reports=[],
        feedback=[],
        revision=0,
        max_revisions=max_revisions,
        steps_done=0,
        next="",
    )


def request_of(state: PostState) -> PostRequest:
    """The request the run works from, and every check grounds against: the user's
    (`given_request_of`) with what research fetched from real sources
    (`ResearchNotes.fetched`: arXiv's title in place of an id, the fetched text added to
    the context; `agents.teams.sources.effective_request`). The user's own before research."""
    notes = research_of(state)
    return effective_request(given_request_of(state), notes.fetched if notes else None)


def given_request_of(state: PostState) -> PostRequest:
    """The request as the user gave it, validated again from the state's JSON."""
    return PostRequest.model_validate(state["request"])


def research_of(state: PostState) -> ResearchNotes | None:
    """The research notes of the state; None before research ran."""
    notes = state.get("research")
    return None if notes is None else ResearchNotes.model_validate(notes)


def draft_of(state: PostState) -> PostDraft | None:
    """The current draft of the post; None before one is written."""
    draft = state.get("draft")
    return None if draft is None else PostDraft.model_validate(draft)


def reports_of(state: PostState) -> list[VerificationReport]:
    """The verification reports of the current draft, in the order they were written."""
    return [VerificationReport.model_validate(r) for r in state.get("reports") or []]


def initial_teams(*, teams: tuple[str, ...] = tuple(TEAMS)) -> Teams:
    """The task snapshot before anything ran: `teams` (default all) with every status IDLE."""
    return Teams.initial({team: TEAMS[team] for team in teams})
