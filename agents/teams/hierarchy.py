"""The wiring of the hierarchy: meta-supervisor over the Content and Verification teams.

```
meta_supervisor ──> content_team      (content_supervisor -> paper_researcher | linkedin_creator)
        ^      ├──> verification_team (verification_supervisor -> tech_verifier | style_checker;
        │      │                       PARALLEL: both at once, joined at the supervisor)
        │      └──> human_review      (when the request asks for a review: an interrupt;
        └──────────────┘               REVISE goes back to content_team, else the end)
```

Each team is a subgraph used as a node, with an edge back to the meta-supervisor;
inside it, each agent has an edge back to its supervisor. Nodes get the model and
the event sink per run from LangGraph's runtime context (`RunContext`); nothing is
compiled at import time.
"""

from __future__ import annotations

from langgraph.cache.base import BaseCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.teams import content, plan, researcher, review, verification
from agents.teams.nodes import Node, RunContext, agent_node
from agents.teams.state import (
    CONTENT_TEAM,
    FINISH,
    LINKEDIN_CREATOR,
    META_SUPERVISOR,
    PAPER_RESEARCHER,
    STYLE_CHECKER,
    SUPERVISORS,
    TEAMS,
    TECH_VERIFIER,
    VERIFICATION_TEAM,
    PostState,
)
from agents.teams.supervisors import meta_supervisor, team_supervisor

#: LangGraph super-steps allowed per graph run; the plan needs ~30 with 2 revisions.
RECURSION_LIMIT = 100

#: Each agent's node: its work and the activity it reports when it starts (the
#: PaperResearcher's three nodes are `agents.teams.researcher`'s).
AGENT_NODES: dict[str, Node] = {
    LINKEDIN_CREATOR: agent_node(LINKEDIN_CREATOR, "writing the post", content.create),
    TECH_VERIFIER: agent_node(TECH_VERIFIER, "checking technical accuracy", verification.verify),
    STYLE_CHECKER: agent_node(STYLE_CHECKER, "checking LinkedIn style", verification.verify),
}


def _route(state: PostState) -> str:
    return state["next"]


def _team_route(state: PostState) -> str | list[str]:
    """A team supervisor's decision; ALL_VERIFIERS fans out to every pending verifier
    at once (their edges back to the supervisor join them: it runs once, after both)."""
    if state["next"] == plan.ALL_VERIFIERS:
        return plan.pending_verifiers(state)
    return state["next"]


def _meta_route(state: PostState) -> str:
    """The meta-supervisor's decision, with FINISH going to the review first when the
    request asks for one (`review.review_needed`)."""
    if state["next"] == FINISH and review.review_needed(state):
        return review.HUMAN_REVIEW
    return state["next"]


def team_graph(team: str, *, cache: BaseCache | None = None) -> CompiledStateGraph:
    """`team`'s subgraph: its supervisor, and each agent with an edge back to it. A
    subgraph does not inherit its parent's node cache: `cache` is compiled in."""
    supervisor = SUPERVISORS[team]
    builder = StateGraph(PostState, context_schema=RunContext)
    builder.add_node(supervisor, team_supervisor(team))
    builder.add_edge(START, supervisor)
    for agent in TEAMS[team]:
        if agent == PAPER_RESEARCHER:  # three nodes, the work cached (agents.teams.researcher)
            researcher.add_researcher(builder, back_to=supervisor)
            continue
        builder.add_node(agent, AGENT_NODES[agent])
        builder.add_edge(agent, supervisor)
    builder.add_conditional_edges(
        supervisor, _team_route, {**{a: a for a in TEAMS[team]}, FINISH: END}
    )
    return builder.compile(name=team, cache=cache)


def build_graph(
    *, checkpointer: BaseCheckpointSaver | None = None, cache: BaseCache | None = None
) -> CompiledStateGraph:
    """Build the full hierarchy: meta-supervisor over the Content and Verification teams.

    Input and output are `PostState` (start from `agents.teams.state.initial_state`). Run it
    with `config={"recursion_limit": RECURSION_LIMIT}` and
    `context=RunContext(model=..., emit=...)`; with a `checkpointer`, also a
    `thread_id` in `config["configurable"]`. Model and tool errors propagate (after an
    AGENT_ERROR event). With a `cache` (LangGraph's node cache), the PaperResearcher's
    notes are served from it for a request it already researched
    (`agents.teams.researcher`).
    """
    builder = StateGraph(PostState, context_schema=RunContext)
    builder.add_node(META_SUPERVISOR, meta_supervisor)
    for team in TEAMS:
        builder.add_node(team, team_graph(team, cache=cache))
        builder.add_edge(team, META_SUPERVISOR)
    builder.add_node(review.HUMAN_REVIEW, review.human_review, destinations=(CONTENT_TEAM, END))
    builder.add_edge(START, META_SUPERVISOR)
    builder.add_conditional_edges(
        META_SUPERVISOR,
        _meta_route,
        {
            CONTENT_TEAM: CONTENT_TEAM,
            VERIFICATION_TEAM: VERIFICATION_TEAM,
            review.HUMAN_REVIEW: review.HUMAN_REVIEW,
            FINISH: END,
        },
    )
    return builder.compile(name="postassist", checkpointer=checkpointer, cache=cache)


def build_verification_graph(
    *, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Build the Verification team alone (for `verifyPost`): it checks `state["draft"]`
    against `state["request"]` and leaves its reports in `state["reports"]`. Run it as
    `build_graph`."""
    builder = StateGraph(PostState, context_schema=RunContext)
    builder.add_node(VERIFICATION_TEAM, team_graph(VERIFICATION_TEAM))
    builder.add_edge(START, VERIFICATION_TEAM)
    builder.add_edge(VERIFICATION_TEAM, END)
    return builder.compile(name="verification", checkpointer=checkpointer)
