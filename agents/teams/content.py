"""The Content team's work: PaperResearcher writes notes, LinkedInCreator writes the post."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from agents.checks import compose, rules, verdicts
from agents.checks.wording import counted
from agents.teams import paper_sources, prompts, tools, writer
from agents.teams.fetched_text import effective_request
from agents.teams.nodes import AgentOutput, Reporter
from agents.teams.state import PostState, given_request_of, request_of, research_of
from db.events import TaskResult
from db.models import PostRequest
from db.outputs import PostDraft, ResearchNotes

#: Output-token cap of the research notes, sized for the 135M local model at ~40 tokens/s
#: (the post's sentences have their own: `writer.SENTENCE_MAX_TOKENS`).
RESEARCH_MAX_TOKENS = 320
#: Takeaways in a post (LinkedIn readers skim; three is the house style), and the longest
#: one in characters (a bullet longer than two lines on a phone is a paragraph).
MAX_TAKEAWAYS = 3
MAX_TAKEAWAY_CHARS = 200
#: Takeaways beside the written key points: facts of the context the body did not use.
MAX_EXTRA_TAKEAWAYS = 2


def source_text(request: PostRequest) -> str:
    """What a post's claims must agree with: the request's title and context only (the
    user's, with the text research fetched from real sources: `agents.teams.state.request_of`).

    The model-written notes are not a source: a small model invents numbers there
    too, and a claim is not true because two model outputs repeat it.
    """
    return f"{request.paper_title}\n{request.additional_context}"


async def research(reporter: Reporter, state: PostState) -> AgentOutput:
    """PaperResearcher: gather the request's sources (the request itself, and real
    sources when its title is an arXiv id or web search is configured:
    `agents.teams.paper_sources`), ask the model for notes, parse them. Returns the `research`
    state update (`ResearchNotes` with `fetched`, what was fetched) and the notes to store
    on the task."""
    given = given_request_of(state)
    fetched = await paper_sources.gather(reporter, given, research_of(state))
    request = effective_request(given, fetched)
    sources = await reporter.tool(
        tools.collect_paper_sources,
        {
            "paper_title": given.paper_title,
            "additional_context": given.additional_context,
            "fetched": fetched.model_dump(mode="json"),
        },
    )
    user = prompts.RESEARCHER_USER.format(
        title=request.paper_title,
        context=request.additional_context or "(none given)",
        feedback=_feedback(state),
    )
    text = await reporter.write(
        [SystemMessage(prompts.RESEARCHER_SYSTEM), HumanMessage(user)],
        purpose="research notes",
        max_tokens=RESEARCH_MAX_TOKENS,
    )
    notes = parse_research_notes(text, sources).model_copy(update={"fetched": fetched})
    insights, metrics = len(notes.key_insights), len(notes.metrics)
    summary = f"notes: {counted(insights, 'insight')}, {counted(metrics, 'metric')}"
    summary += paper_sources.summary_suffix(fetched)
    if not request.additional_context.strip():
        summary += ", nothing to write from (no context given or fetched)"
    update = {"research": notes.model_dump(mode="json"), "research_round": state.get("revision", 0)}
    return AgentOutput(update, summary, TaskResult(research_notes=notes))


async def create(reporter: Reporter, state: PostState) -> AgentOutput:
    """LinkedInCreator: plan the post, write it one checked sentence at a time
    (`agents.teams.writer`), then assemble it (hook, body, takeaways, question, hashtags)
    within LinkedIn's limits. Every sentence of the draft passed the verifiers' own
    sentence checks when it was written."""
    request, notes = request_of(state), research_of(state) or ResearchNotes()
    hashtags = await reporter.tool(
        tools.suggest_hashtags,
        {
            "paper_title": request.paper_title,
            "additional_context": request.additional_context,
            "max_hashtags": min(request.max_hashtags, rules.RECOMMENDED_MAX_HASHTAGS),
        },
    )
    plan = await writer.plan(reporter, request, notes.key_insights, hashtags)
    live = writer.LiveDraft(reporter.context.drafts, draft=state.get("revision", 0))
    draft = writer.Draft(live=live)
    feedback = _feedback(state)
    draft.hook = await writer.write_sentence(
        reporter, request, role="hook", fact=plan["hook"], draft=draft, feedback=feedback
    )
    for point in plan["points"]:
        sentence = await writer.write_sentence(
            reporter, request, role="point", fact=point, draft=draft, feedback=feedback
        )
        if sentence:
            draft.body.append(sentence)
    await writer.promote_hook(reporter, request, draft)
    draft.question = await writer.write_question(
        reporter, request, topic=plan["topic"], draft=draft
    )
    # takeaways are facts the post does not state yet (in any voice: "Our" -> "Their")
    said = [*draft.sentences(), *(compose.reader_voice(f) for f in (plan["hook"], *plan["points"]))]
    takeaways = [
        t for t in _takeaways(notes, request) if not any(compose.is_repeat(t, s) for s in said)
    ][:MAX_EXTRA_TAKEAWAYS]
    post = await reporter.tool(
        tools.format_linkedin_post,
        {
            "paper_title": request.paper_title,
            "key_point": draft.hook or _key_point(takeaways, request),
            "body": " ".join(s for s in (draft.hook, *draft.body) if s),
            "takeaways": takeaways,
            "question": draft.question,
            "hashtags": hashtags,
            "link": notes.paper.url if notes.paper else "",
        },
    )
    await live.finish(post)
    made = PostDraft(content=post, hashtags=hashtags)
    update = {"draft": made.model_dump(mode="json"), "draft_round": state.get("revision", 0)}
    outcomes = [entry["outcome"] for entry in draft.log]
    summary = f"post written: {counted(len(post), 'character')}, "
    summary += f"{counted(len(draft.body) + bool(draft.hook), 'checked sentence')}, "
    summary += f"{counted(outcomes.count('dropped'), 'fact')} dropped"
    return AgentOutput(update, summary, TaskResult(content=post, hashtags=hashtags))


def _takeaways(notes: ResearchNotes, request: PostRequest) -> list[str]:
    """Up to `MAX_TAKEAWAYS` insights in the reader's voice that pass the verifiers'
    sentence checks (the context's own sentences lead the insights)."""
    out: list[str] = []
    for insight in notes.key_insights:
        line = compose.reader_voice(insight).strip()
        if len(line) > MAX_TAKEAWAY_CHARS or not line:
            continue
        if not verdicts.rejected_sentences(
            line, title=request.paper_title, context=request.additional_context
        ):
            out.append(line)
        if len(out) == MAX_TAKEAWAYS:
            break
    return out


def _key_point(takeaways: list[str], request: PostRequest) -> str:
    """The hook when the draft has none: the first takeaway (the context's key fact, in
    the reader's voice), else the title itself."""
    if takeaways:
        return takeaways[0]
    return request.paper_title


def parse_research_notes(text: str, sources: dict[str, Any]) -> ResearchNotes:
    """Turn the researcher's SUMMARY/INSIGHTS/LIMITATIONS text into notes (without
    `fetched`; `sources` is `collect_paper_sources`' result).

    Lenient: unlabeled text counts as summary. Insights are grounded first: the
    context's fact-bearing sentences (`sources["key_sentences"]`) lead, the model's
    own bullets follow. Raises `pydantic.ValidationError` when `sources["sources"]`
    holds an entry that is not a source.
    """
    sections = _sections(text)
    summary = compose.dedupe_sentences(" ".join(sections["summary"]), max_chars=600)
    insights: list[str] = []
    for item in [*sources.get("key_sentences", []), *sections["insights"]]:
        if item not in insights and len(insights) < 6:
            insights.append(item[:300])
    limitations = list(dict.fromkeys(s[:300] for s in sections["limitations"]))[:3]
    return ResearchNotes(
        summary=summary,
        key_insights=insights,
        metrics=sources.get("metrics", []),
        limitations=limitations,
        sources=sources.get("sources", []),
        source_note=sources.get("note", ""),
    )


_LABEL = re.compile(
    r"^\**(summary|insights?|key insights|limitations?)\**\s*:?\**\s*(.*)$", re.IGNORECASE
)


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"summary": [], "insights": [], "limitations": []}
    current = "summary"
    for raw in text.splitlines():
        line = raw.strip()
        label = _LABEL.match(line)
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
    return sections


#: Characters of the post a person asked to change that the writer's prompts quote: its
#: opening, enough to keep what was liked, in the bundled model's 4096-token window.
PREVIOUS_POST_CHARS = 400


def _feedback(state: PostState) -> str:
    items = state.get("feedback") or []
    if not items:
        return ""
    text = prompts.FEEDBACK.format(items="\n".join(f"- {i}" for i in items[:8]))
    if previous := state.get("previous_post"):
        text += prompts.PREVIOUS_POST.format(post=previous[:PREVIOUS_POST_CHARS])
    return text
