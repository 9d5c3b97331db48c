"""The hierarchical teams as LangGraph graphs: meta-supervisor over Content and Verification.

```
meta_supervisor ──> content_team      (content_supervisor -> paper_researcher | linkedin_creator)
        ^      └──> verification_team (verification_supervisor -> tech_verifier | style_checker)
        └──────────────┘
```

Every observable step is reported through `emit` as an `AgentEvent`; the runner turns
them into event-log rows. `build_graph(model)` builds a fresh graph per call; nothing
is compiled at import time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field, create_model

from agents import plan, prompts, tools
from agents.state import (
    CONTENT_SUPERVISOR,
    CONTENT_TEAM,
    FINISH,
    LINKEDIN_CREATOR,
    META_SUPERVISOR,
    PAPER_RESEARCHER,
    STYLE_CHECKER,
    TEAMS,
    TECH_VERIFIER,
    VERIFICATION_SUPERVISOR,
    VERIFICATION_TEAM,
    PostState,
)
from db.models import EventKind

#: Output-token caps per call, sized for the 135M local model at ~40 tokens/s.
RESEARCH_MAX_TOKENS = 320
POST_MAX_TOKENS = 400
#: Lowest report score that can be approved (0..1): an "approved" post with a failing
#: grade would contradict itself.
APPROVAL_SCORE = 0.5
#: LangGraph super-steps allowed per graph run; the plan needs ~30 with 2 revisions.
RECURSION_LIMIT = 100


@dataclass
class AgentEvent:
    """One observable step, as the graph reports it (the runner adds `seq`).

    `progress` is the task's progress after the step (None: unchanged); `result`
    holds task columns to store with the event (post, notes, reports).
    """

    kind: EventKind
    message: str = ""
    team: str | None = None
    agent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None
    result: dict[str, Any] | None = None


Emit = Callable[[AgentEvent], Awaitable[None]]


async def _discard(_event: AgentEvent) -> None:
    return None


class Judgement(BaseModel):
    """A verifier model's judgement of a post."""

    score: float = Field(description="quality from 0 (bad) to 1 (excellent)")
    approved: bool = Field(description="true when the post can be published as it is")
    issues: list[str] = Field(default_factory=list, description="short problems, at most 5")


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


class _Teams:
    """The nodes of all graphs, sharing one model and one `emit`."""

    def __init__(self, model: BaseChatModel, emit: Emit) -> None:
        self.model = model
        self.emit = emit

    # --- model, tool and routing helpers -------------------------------------------------

    async def _usage(
        self,
        message: AIMessage | None,
        *,
        team: str | None,
        agent: str,
        purpose: str,
        started: float,
    ) -> None:
        usage = (message.usage_metadata if message is not None else None) or {}
        await self.emit(
            AgentEvent(
                EventKind.LLM_USAGE,
                f"{purpose}: {usage.get('total_tokens', 0)} tokens",
                team=team,
                agent=agent,
                data={
                    "purpose": purpose,
                    "input_tokens": usage.get("input_tokens", 0),
                    "output_tokens": usage.get("output_tokens", 0),
                    "total_tokens": usage.get("total_tokens", 0),
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        )

    async def write(
        self, messages: list[Any], *, team: str, agent: str, purpose: str, max_tokens: int
    ) -> str:
        """Free-text model call; reports its token usage. Returns the text."""
        started = time.monotonic()
        reply = await self.model.ainvoke(messages, max_tokens=max_tokens)
        await self._usage(reply, team=team, agent=agent, purpose=purpose, started=started)
        return reply.content if isinstance(reply.content, str) else str(reply.content)

    async def judge(
        self,
        schema: type[BaseModel],
        messages: list[Any],
        *,
        team: str | None,
        agent: str,
        purpose: str,
    ) -> tuple[Any | None, str | None]:
        """Structured-output call (function calling). Returns `(parsed, None)` or
        `(None, why)` when the answer could not be parsed; reports token usage."""
        started = time.monotonic()
        runnable = self.model.with_structured_output(
            schema, method="function_calling", include_raw=True
        )
        out = await runnable.ainvoke(messages)
        await self._usage(out.get("raw"), team=team, agent=agent, purpose=purpose, started=started)
        if out.get("parsing_error") is not None:
            return None, f"unparseable answer ({type(out['parsing_error']).__name__})"
        if out.get("parsed") is None:
            return None, "the model answered without the structured output"
        return out["parsed"], None

    async def tool(self, fn: BaseTool, args: dict[str, Any], *, team: str, agent: str) -> Any:
        """Invoke a LangChain tool, reporting the call and a summary of its result."""
        await self.emit(
            AgentEvent(
                EventKind.TOOL_CALL,
                f"{fn.name}",
                team=team,
                agent=agent,
                data={"tool": fn.name, "args": args},
            )
        )
        result = await fn.ainvoke(args)
        summary = result if isinstance(result, dict | list) else {"text": str(result)}
        await self.emit(
            AgentEvent(
                EventKind.TOOL_RESULT,
                f"{fn.name} returned",
                team=team,
                agent=agent,
                data={"tool": fn.name, "result": summary},
            )
        )
        return result

    async def decide(
        self,
        *,
        supervisor: str,
        team: str | None,
        prompt: str,
        names: Sequence[str],
        options: list[str],
        situation: str,
        state: PostState,
    ) -> Decision:
        """Ask the model to choose among `names`; keep its choice when it is one of the
        valid `options`, otherwise fall back to `options[0]` (the default plan).
        With one valid option the model is not asked. Reports a ROUTING event."""
        if len(options) == 1:
            decision = Decision(options[0], f"the only valid step: {situation}", "plan")
        else:
            text = prompt.format(situation=situation, options=", ".join(options))
            parsed, why = await self.judge(
                route_model(names),
                [SystemMessage(text), HumanMessage("Decide now.")],
                team=team,
                agent=supervisor,
                purpose="routing",
            )
            if parsed is None:
                decision = Decision(options[0], f"fallback to the plan: {why}", "fallback")
            elif parsed.next not in options:
                decision = Decision(
                    options[0],
                    f"fallback to the plan: '{parsed.next}' is not valid now "
                    f"(valid: {', '.join(options)})",
                    "fallback",
                )
            else:
                decision = Decision(parsed.next, parsed.reason.strip()[:300] or "-", "model")
        await self.emit(
            AgentEvent(
                EventKind.ROUTING,
                f"{supervisor} -> {decision.next}: {decision.reason}",
                team=team,
                agent=supervisor,
                data={
                    "next": decision.next,
                    "reason": decision.reason,
                    "source": decision.source,
                    "options": options,
                },
                progress=plan.progress(state),
            )
        )
        return decision

    async def run_agent(
        self,
        state: PostState,
        *,
        team: str,
        agent: str,
        activity: str,
        work: Callable[[PostState], Awaitable[tuple[dict, str, dict | None]]],
    ) -> dict[str, Any]:
        """Run one agent's `work`, reporting start, finish (with the plan's progress and
        any task columns to store) or the error, which is re-raised."""
        await self.emit(AgentEvent(EventKind.AGENT_STARTED, activity, team=team, agent=agent))
        try:
            update, summary, result = await work(state)
        except Exception as exc:
            await self.emit(
                AgentEvent(
                    EventKind.AGENT_ERROR, f"{type(exc).__name__}: {exc}", team=team, agent=agent
                )
            )
            raise
        update["steps_done"] = state.get("steps_done", 0) + 1
        after: PostState = {**state, **update}  # type: ignore[typeddict-item]
        await self.emit(
            AgentEvent(
                EventKind.AGENT_FINISHED,
                summary,
                team=team,
                agent=agent,
                progress=plan.progress(after),
                result=result,
            )
        )
        return update

    # --- supervisors -----------------------------------------------------------------------

    async def meta_supervisor(self, state: PostState) -> dict[str, Any]:
        options = plan.meta_options(state)
        decision = await self.decide(
            supervisor=META_SUPERVISOR,
            team=None,
            prompt=prompts.META_SUPERVISOR,
            names=[CONTENT_TEAM, VERIFICATION_TEAM, FINISH],
            options=options,
            situation=_meta_situation(state),
            state=state,
        )
        update: dict[str, Any] = {"next": decision.next}
        if decision.next == CONTENT_TEAM and plan.draft_is_current(state):
            revision = state.get("revision", 0) + 1
            feedback = [
                i for r in state.get("reports") or [] if not r["approved"] for i in r["issues"]
            ]
            update.update(revision=revision, feedback=feedback, reports=[])
            await self.emit(
                AgentEvent(
                    EventKind.MESSAGE,
                    f"revision {revision} requested: {len(feedback)} issues",
                    agent=META_SUPERVISOR,
                    data={"revision": revision, "feedback": feedback[:10]},
                    progress=plan.progress({**state, **update}),  # type: ignore[typeddict-item]
                    result={"revisions": revision},
                )
            )
        return update

    async def content_supervisor(self, state: PostState) -> dict[str, Any]:
        decision = await self.decide(
            supervisor=CONTENT_SUPERVISOR,
            team=CONTENT_TEAM,
            prompt=prompts.CONTENT_SUPERVISOR,
            names=[PAPER_RESEARCHER, LINKEDIN_CREATOR, FINISH],
            options=plan.content_options(state),
            situation=_content_situation(state),
            state=state,
        )
        return {"next": decision.next}

    async def verification_supervisor(self, state: PostState) -> dict[str, Any]:
        done = sorted(plan.verified_by(state))
        decision = await self.decide(
            supervisor=VERIFICATION_SUPERVISOR,
            team=VERIFICATION_TEAM,
            prompt=prompts.VERIFICATION_SUPERVISOR,
            names=[TECH_VERIFIER, STYLE_CHECKER, FINISH],
            options=plan.verification_options(state),
            situation=f"a draft is ready; reports so far: {', '.join(done) or 'none'}",
            state=state,
        )
        return {"next": decision.next}

    # --- workers ---------------------------------------------------------------------------

    def worker(self, agent: str) -> Callable[[PostState], Awaitable[dict[str, Any]]]:
        """The graph node of `agent`: its work, wrapped in start/finish reporting."""
        team, activity, work = {
            PAPER_RESEARCHER: (CONTENT_TEAM, "researching the paper", self._research),
            LINKEDIN_CREATOR: (CONTENT_TEAM, "writing the post", self._create),
            TECH_VERIFIER: (VERIFICATION_TEAM, "checking technical accuracy", self._verify_tech),
            STYLE_CHECKER: (VERIFICATION_TEAM, "checking LinkedIn style", self._verify_style),
        }[agent]

        async def node(state: PostState) -> dict[str, Any]:
            return await self.run_agent(state, team=team, agent=agent, activity=activity, work=work)

        return node

    async def _research(self, state: PostState) -> tuple[dict, str, dict | None]:
        request = state["request"]
        sources = await self.tool(
            tools.collect_paper_sources,
            {
                "paper_title": request["paper_title"],
                "additional_context": request["additional_context"],
            },
            team=CONTENT_TEAM,
            agent=PAPER_RESEARCHER,
        )
        text = await self.write(
            [
                SystemMessage(prompts.RESEARCHER_SYSTEM),
                HumanMessage(
                    prompts.RESEARCHER_USER.format(
                        title=request["paper_title"],
                        context=request["additional_context"] or "(none given)",
                        feedback=_feedback(state),
                    )
                ),
            ],
            team=CONTENT_TEAM,
            agent=PAPER_RESEARCHER,
            purpose="research notes",
            max_tokens=RESEARCH_MAX_TOKENS,
        )
        notes = parse_research_notes(text, sources)
        summary = f"notes: {len(notes['key_insights'])} insights, {len(notes['metrics'])} metrics"
        update = {"research": notes, "research_round": state.get("revision", 0)}
        return update, summary, {"research_notes": notes}

    async def _create(self, state: PostState) -> tuple[dict, str, dict | None]:
        request, notes = state["request"], state["research"] or {}
        title = request["paper_title"]
        text = await self.write(
            [
                SystemMessage(
                    prompts.CREATOR_SYSTEM.format(
                        audience=request["target_audience"], tone=request["tone"].lower()
                    )
                ),
                HumanMessage(
                    prompts.CREATOR_USER.format(
                        title=title,
                        notes=notes_text(notes),
                        technical=(
                            prompts.TECHNICAL_DETAILS_ON
                            if request["include_technical_details"]
                            else prompts.TECHNICAL_DETAILS_OFF
                        ),
                        feedback=_feedback(state),
                    )
                ),
            ],
            team=CONTENT_TEAM,
            agent=LINKEDIN_CREATOR,
            purpose="post body",
            max_tokens=POST_MAX_TOKENS,
        )
        grounded = source_text(request)
        if state.get("feedback"):
            # A revision: drop every claim the research cannot back (the TechVerifier's
            # findings), whatever the model wrote this time.
            check = tools.technical_check(text, grounded)
            text = tools.strip_claims(
                text, numbers=check["unsupported_numbers"], words=check["overstated_claims"]
            )
        hashtags = await self.tool(
            tools.suggest_hashtags,
            {
                "paper_title": title,
                "text": notes_text(notes),
                "max_hashtags": min(request["max_hashtags"], tools.RECOMMENDED_MAX_HASHTAGS),
            },
            team=CONTENT_TEAM,
            agent=LINKEDIN_CREATOR,
        )
        grounded_numbers = tools.numbers_in(grounded)
        takeaways = [
            insight
            for insight in notes.get("key_insights") or []
            if tools.numbers_in(insight) <= grounded_numbers
            and not tools.overstated_claims_in(insight)
        ][:3]
        question = _question(text, title)
        post = await self.tool(
            tools.format_linkedin_post,
            {
                "paper_title": title,
                "body": _without_question(text, question),
                "takeaways": takeaways,
                "question": question,
                "hashtags": hashtags,
            },
            team=CONTENT_TEAM,
            agent=LINKEDIN_CREATOR,
        )
        draft = {"content": post, "hashtags": hashtags}
        update = {"draft": draft, "draft_round": state.get("revision", 0)}
        summary = f"post written: {len(post)} characters, {len(hashtags)} hashtags"
        return update, summary, {"content": post, "hashtags": hashtags}

    async def _verify_tech(self, state: PostState) -> tuple[dict, str, dict | None]:
        request, notes, post = state["request"], state.get("research") or {}, _post(state)
        check = await self.tool(
            tools.check_technical_accuracy,
            {"post": post, "source_text": source_text(request)},
            team=VERIFICATION_TEAM,
            agent=TECH_VERIFIER,
        )
        judgement, why = await self.judge(
            Judgement,
            [
                SystemMessage(
                    prompts.TECH_VERIFIER.format(
                        notes=notes_text(notes), post=post, findings=_findings(check["issues"])
                    )
                ),
                HumanMessage("Give your judgement."),
            ],
            team=VERIFICATION_TEAM,
            agent=TECH_VERIFIER,
            purpose="technical judgement",
        )
        return self._report(state, TECH_VERIFIER, "TECHNICAL", check, judgement, why)

    async def _verify_style(self, state: PostState) -> tuple[dict, str, dict | None]:
        request, post = state["request"], _post(state)
        check = await self.tool(
            tools.check_linkedin_style,
            {"post": post, "max_hashtags": request["max_hashtags"]},
            team=VERIFICATION_TEAM,
            agent=STYLE_CHECKER,
        )
        judgement, why = await self.judge(
            Judgement,
            [
                SystemMessage(
                    prompts.STYLE_CHECKER.format(
                        audience=request["target_audience"],
                        tone=request["tone"].lower(),
                        post=post,
                        findings=_findings(check["issues"]),
                    )
                ),
                HumanMessage("Give your judgement."),
            ],
            team=VERIFICATION_TEAM,
            agent=STYLE_CHECKER,
            purpose="style judgement",
        )
        return self._report(state, STYLE_CHECKER, "STYLE", check, judgement, why)

    def _report(
        self,
        state: PostState,
        agent: str,
        kind: str,
        check: dict[str, Any],
        judgement: Judgement | None,
        why: str | None,
    ) -> tuple[dict, str, dict | None]:
        report = build_report(
            agent=agent, kind=kind, check=check, judgement=judgement, judgement_error=why
        )
        reports = [r for r in state.get("reports") or [] if r["agent"] != agent] + [report]
        verdict = "approved" if report["approved"] else "not approved"
        summary = f"{verdict} (score {report['score']:.2f}, {len(report['issues'])} issues)"
        return {"reports": reports}, summary, {"verification_reports": reports}


# --- pure helpers ------------------------------------------------------------------------------


def build_report(
    *,
    agent: str,
    kind: str,
    check: dict[str, Any],
    judgement: Judgement | None,
    judgement_error: str | None = None,
) -> dict[str, Any]:
    """Combine a deterministic check with the model's judgement into a report.

    The hard check always counts: `approved` needs it to pass, and the score is the
    lower of the two. Without a usable judgement the check alone decides. A report
    is never approved below `APPROVAL_SCORE`.
    Returns `{"agent", "kind", "score", "approved", "issues", "checks", "model_judgement"}`.
    """
    issues = list(check["issues"])
    score = float(check["score"])
    approved = bool(check["passed"])
    if judgement is not None:
        model_score = min(1.0, max(0.0, float(judgement.score)))
        score = min(score, model_score)
        approved = approved and bool(judgement.approved)
        for issue in judgement.issues[:5]:
            issue = str(issue).strip()[:200]
            if issue and issue not in issues:
                issues.append(issue)
    approved = approved and score >= APPROVAL_SCORE
    checks = {k: v for k, v in check.items() if k not in ("issues", "score", "passed")}
    return {
        "agent": agent,
        "kind": kind,
        "score": round(score, 3),
        "approved": approved,
        "issues": issues,
        "checks": checks,
        "model_judgement": judgement is not None,
        "model_judgement_error": judgement_error,
    }


def parse_research_notes(text: str, sources: dict[str, Any]) -> dict[str, Any]:
    """Turn the researcher's SUMMARY/INSIGHTS/LIMITATIONS text into notes.

    Lenient: unlabeled text counts as summary. Insights are grounded first: the
    context's fact-bearing sentences (`sources["key_sentences"]`) lead, the model's
    own bullets follow. Returns `{"summary", "key_insights", "metrics",
    "limitations", "sources", "source_note"}`.
    """
    sections: dict[str, list[str]] = {"summary": [], "insights": [], "limitations": []}
    current = "summary"
    for raw in text.splitlines():
        line = raw.strip()
        label = re.match(
            r"^\**(summary|insights?|key insights|limitations?)\**\s*:?\**\s*(.*)$",
            line,
            re.IGNORECASE,
        )
        if label:
            name = label.group(1).lower()
            current = (
                "summary"
                if name.startswith("summary")
                else "limitations"
                if name.startswith("limitation")
                else "insights"
            )
            line = label.group(2).strip()
        line = re.sub(r"^[-*•\d.)\s]+", "", line).strip()
        if line:
            sections[current].append(line)
    summary = tools.dedupe_sentences(" ".join(sections["summary"]), max_chars=600)
    insights: list[str] = []
    for item in [*sources.get("key_sentences", []), *sections["insights"]]:
        if item not in insights and len(insights) < 6:
            insights.append(item[:300])
    limitations = list(dict.fromkeys(s[:300] for s in sections["limitations"]))[:3]
    return {
        "summary": summary,
        "key_insights": insights,
        "metrics": sources.get("metrics", []),
        "limitations": limitations,
        "sources": sources.get("sources", []),
        "source_note": sources.get("note", ""),
    }


def notes_text(notes: dict[str, Any]) -> str:
    """Render research notes as plain text for prompts and checks."""
    parts = [f"Summary: {notes.get('summary', '')}"]
    parts += [f"- {i}" for i in notes.get("key_insights", [])]
    if notes.get("metrics"):
        parts.append("Metrics: " + ", ".join(notes["metrics"]))
    parts += [f"Limitation: {x}" for x in notes.get("limitations", [])]
    return "\n".join(parts)


def source_text(request: dict[str, Any]) -> str:
    """What a post's claims must agree with: the user's title and context only.

    The model-written notes are not a source: a small model invents numbers there
    too, and a claim is not true because two model outputs repeat it.
    """
    return f"{request['paper_title']}\n{request['additional_context']}"


def _post(state: PostState) -> str:
    return (state.get("draft") or {}).get("content", "")


def _findings(issues: list[str]) -> str:
    return "; ".join(issues) if issues else "no problems"


def _feedback(state: PostState) -> str:
    items = state.get("feedback") or []
    if not items:
        return ""
    return prompts.FEEDBACK.format(items="\n".join(f"- {i}" for i in items[:8]))


def _question(text: str, title: str) -> str:
    questions = [s for s in tools.sentences(text) if s.endswith("?") and len(s) < 200]
    if questions:
        return questions[-1]
    return f'How could the ideas in "{title[:120]}" change your own work?'


def _without_question(text: str, question: str) -> str:
    return text.replace(question, "").strip()


def _meta_situation(state: PostState) -> str:
    if not plan.draft_is_current(state):
        return "no post for this round yet"
    if not plan.verified_by(state) >= set(plan.VERIFIERS):
        return "a post is written and needs verification"
    issues = [i for r in state.get("reports") or [] for i in r["issues"]]
    verdict = "approved" if plan.is_approved(state) else "not approved"
    return (
        f"verification {verdict}; issues: {'; '.join(issues[:5]) or 'none'}; "
        f"revision {state.get('revision', 0)} of at most {state.get('max_revisions', 0)}"
    )


def _content_situation(state: PostState) -> str:
    if state.get("research") is None:
        return "nothing researched yet"
    if not plan.draft_is_current(state):
        return (
            "revision requested; feedback: " + "; ".join((state.get("feedback") or [])[:3])
            if state.get("revision", 0)
            else "research notes are ready, no post yet"
        )
    return "the post for this round is written"


# --- graph construction ------------------------------------------------------------------------


def _route(state: PostState) -> str:
    return state["next"]


def _team_graph(teams: _Teams, team: str) -> CompiledStateGraph:
    supervisor, supervise = {
        CONTENT_TEAM: (CONTENT_SUPERVISOR, teams.content_supervisor),
        VERIFICATION_TEAM: (VERIFICATION_SUPERVISOR, teams.verification_supervisor),
    }[team]
    builder = StateGraph(PostState)
    builder.add_node(supervisor, supervise)
    builder.add_edge(START, supervisor)
    for agent in TEAMS[team]:
        builder.add_node(agent, teams.worker(agent))
        builder.add_edge(agent, supervisor)
    builder.add_conditional_edges(supervisor, _route, {**{a: a for a in TEAMS[team]}, FINISH: END})
    return builder.compile(name=team)


def _team_node(teams: _Teams, team: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    graph = _team_graph(teams, team)

    async def run_team(state: PostState, config: RunnableConfig) -> dict[str, Any]:
        await teams.emit(AgentEvent(EventKind.TEAM_STARTED, f"{team} started", team=team))
        out = await graph.ainvoke(state, config)
        await teams.emit(
            AgentEvent(
                EventKind.TEAM_FINISHED, f"{team} finished", team=team, progress=plan.progress(out)
            )
        )
        return {k: v for k, v in out.items() if k != "request"}

    return run_team


def build_graph(model: BaseChatModel, *, emit: Emit | None = None) -> CompiledStateGraph:
    """Build the full hierarchy: meta-supervisor over the Content and Verification teams.

    Input and output are `PostState` (start from `agents.state.initial_state`). Run it
    with `config={"recursion_limit": RECURSION_LIMIT}`. Model and tool errors
    propagate (after an AGENT_ERROR event); the runner turns them into a FAILED task.
    """
    teams = _Teams(model, emit or _discard)
    builder = StateGraph(PostState)
    builder.add_node(META_SUPERVISOR, teams.meta_supervisor)
    builder.add_node(CONTENT_TEAM, _team_node(teams, CONTENT_TEAM))
    builder.add_node(VERIFICATION_TEAM, _team_node(teams, VERIFICATION_TEAM))
    builder.add_edge(START, META_SUPERVISOR)
    builder.add_conditional_edges(
        META_SUPERVISOR,
        _route,
        {CONTENT_TEAM: CONTENT_TEAM, VERIFICATION_TEAM: VERIFICATION_TEAM, FINISH: END},
    )
    builder.add_edge(CONTENT_TEAM, META_SUPERVISOR)
    builder.add_edge(VERIFICATION_TEAM, META_SUPERVISOR)
    return builder.compile(name="postassist")


def build_verification_graph(
    model: BaseChatModel, *, emit: Emit | None = None
) -> CompiledStateGraph:
    """Build the Verification team alone (for `verifyPost`): it checks `state["draft"]`
    against `state["request"]` and leaves its reports in `state["reports"]`."""
    teams = _Teams(model, emit or _discard)
    builder = StateGraph(PostState)
    builder.add_node(VERIFICATION_TEAM, _team_node(teams, VERIFICATION_TEAM))
    builder.add_edge(START, VERIFICATION_TEAM)
    builder.add_edge(VERIFICATION_TEAM, END)
    return builder.compile(name="verification")
