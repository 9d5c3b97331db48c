"""LangChain tools of the teams; each wraps a pure function of `rules`, `compose`,
`hashtags` or `verdicts` (`agents.checks`), or a fetch of `arxiv` or `sources` (web
search). Arguments and results are plain JSON (the event log records both); the
records they carry are `db.outputs` models' dumps."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.tools import BaseTool, tool

from agents.checks import compose, hashtags, style, verdicts
from agents.checks.compose import extract_key_sentences
from agents.checks.rules import numbers_in
from agents.teams import arxiv, fetched_text, post_plan, sources
from db.models import PostRequest
from db.outputs import Fetched, RequestSource


@tool
def collect_paper_sources(
    paper_title: str, additional_context: str = "", fetched: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Gather what is known about a paper: the request itself and what research fetched.

    Args:
        paper_title: the paper's title as the user gave it (a title, or an arXiv id or link).
        additional_context: abstract, notes or results the user pasted (may be empty).
        fetched: what research fetched from real sources (a `db.outputs.Fetched` as JSON), or None.

    Returns {"sources": [{"kind", "title", "characters", ...}], "metrics": [...],
    "key_sentences": [...], "note": str}: the request, then each fetched source (arXiv,
    web) with its link; metrics and key sentences from the user's context and the
    fetched abstract and snippets. The note names what was fetched and what failed or
    was not asked, and says when the notes rest on the request alone: no source is
    ever invented.
    """
    record = None if fetched is None else Fetched.model_validate(fetched)
    prose = "\n".join(t for t in (additional_context, fetched_text.fetched_prose(record)) if t)
    request = RequestSource(title=paper_title, characters=len(additional_context))
    entries = [request, *fetched_text.source_entries(record)]
    return {
        "sources": [entry.model_dump(mode="json") for entry in entries],
        "metrics": sorted(numbers_in(prose)),
        "key_sentences": extract_key_sentences(prose, limit=5),
        "note": fetched_text.source_note(additional_context, record),
    }


@tool
async def fetch_arxiv_paper(arxiv_id: str, api_url: str, timeout_seconds: float) -> dict[str, Any]:
    """Fetch a paper's title, authors, abstract and dates from the arXiv API
    (`GET {api_url}/query?id_list=<arxiv_id>`).

    Args:
        arxiv_id: an arXiv id, "1706.03762" or "1706.03762v7" (or a form
            `agents.teams.arxiv.parse_arxiv_id` takes: "arXiv:...", an arxiv.org link).
        api_url: the arXiv API root, e.g. "https://export.arxiv.org/api".
        timeout_seconds: how long the whole request may take.

    Returns {"ok": True, "paper": {arxiv_id, title, authors, abstract, published,
    updated, primary_category, url, pdf_url}, "seconds"} or {"ok": False, "error": one
    sentence, "seconds"}: a source that fails (unreachable, too slow, an HTTP error, no
    such id) is reported, never raised and never made up.
    """
    started = time.monotonic()
    parsed = arxiv.parse_arxiv_id(arxiv_id)
    try:
        if parsed is None:
            raise sources.SourceError(f"{arxiv_id!r} is not an arXiv id")
        paper = await arxiv.fetch_arxiv(parsed, api_url=api_url, time_limit=timeout_seconds)
    except sources.SourceError as exc:
        return {"ok": False, "error": str(exc), "seconds": _since(started)}
    return {"ok": True, "paper": paper.model_dump(mode="json"), "seconds": _since(started)}


def web_search_tool(*, api_key: str, api_url: str | None, timeout: float) -> BaseTool:
    """The `search_web` tool bound to a Tavily key, its API root (None: Tavily's own)
    and a timeout in seconds. The key is bound here, not passed as an argument, so the
    event log (which records every tool call's arguments) never shows it."""

    @tool
    async def search_web(query: str) -> dict[str, Any]:
        """Search the web (Tavily, through LangChain's integration) for a paper.

        Args:
            query: what to search for, e.g. the paper's title.

        Returns {"ok": True, "results": [{"title", "url", "content"}], "seconds"} (at
        most 3 results, a snippet of each) or {"ok": False, "error": one sentence,
        "seconds"}; a failed search is reported, never raised.
        """
        started = time.monotonic()
        try:
            found = await sources.search_web(
                query, api_key=api_key, api_url=api_url, time_limit=timeout
            )
        except sources.SourceError as exc:
            return {"ok": False, "error": str(exc), "seconds": _since(started)}
        results = [r.model_dump(mode="json") for r in found]
        return {"ok": True, "results": results, "seconds": _since(started)}

    return search_web


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


@tool
def suggest_hashtags(paper_title: str, additional_context: str, max_hashtags: int) -> list[str]:
    """Suggest hashtags (without '#') for a LinkedIn post about a paper: CamelCase key
    phrases of the title and context (yake), topic tags when those are too few.

    Args:
        paper_title: the paper's title.
        additional_context: the context the user gave (not model-written notes).
        max_hashtags: the most hashtags to return (1..20).
    """
    return hashtags.suggest_hashtags(paper_title, additional_context, max_hashtags)


#: Assemble the final LinkedIn post (`compose.compose_post`, whose arguments it takes).
format_linkedin_post = tool(
    "format_linkedin_post",
    description="Assemble the final LinkedIn post: hook, body, key takeaways, the paper's "
    "link, question, hashtags, within 3000 characters and with the hook before the "
    "~210-character fold. Takes the paper's title, its key point (the hook when the body "
    "has none), the drafted body, 2-4 short factual takeaways, one question, hashtags "
    "without '#' and the paper's link (or '').",
)(compose.compose_post)


@tool
def check_technical_accuracy(post: str, paper_title: str, additional_context: str) -> dict:
    """Check a post's claims, sentence by sentence, against the user's title and context:
    numbers with units, dates, named entities, attribution, comparisons; and hype words.

    Args:
        post: the full post text.
        paper_title: the paper's title.
        additional_context: the context the user gave; the post must agree with it.

    Returns the unsupported sentences with reasons, issues, a score 0..1 and whether
    the check passed.
    """
    return verdicts.technical_report(post, title=paper_title, context=additional_context)


@tool
def check_linkedin_style(
    post: str, max_hashtags: int, paper_title: str = "", additional_context: str = ""
) -> dict[str, Any]:
    """Check a post against LinkedIn's limits (3000 characters, at most `max_hashtags`
    hashtags, a hook before the ~210-character "see more" fold), the reader's voice, a
    hook that states the key idea (no filler, no pronoun with nothing before it), and how
    it reads: sentences of at most 25 words, no repeated sentence or phrase, terms
    spelled as the title and context spell them; and a question about this paper.

    Args:
        post: the full post text.
        max_hashtags: the most hashtags the user allows (1..20).
        paper_title: the paper's title (a quoted title counts as one word and is never
            a repeated phrase).
        additional_context: the context the user gave (its terms' spelling).
    """
    return style.style_report(post, max_hashtags, title=paper_title, context=additional_context)


@tool
def plan_post(
    paper_title: str,
    additional_context: str,
    insights: list[str],
    hashtags: list[str],
    target_audience: str = "professional",
) -> dict[str, Any]:
    """Plan a post before a word is written: the hook's fact, 2-3 key points (each a
    sentence of the context, the researcher's key sentences first) and the topic of the
    closing question.

    Args:
        paper_title: the paper's title.
        additional_context: the user's context (the facts come from it).
        insights: the research notes' key insights, best first.
        hashtags: the post's hashtags (the question's topic may come from the first).
        target_audience: who the post is for.
    """
    request = _request(paper_title, additional_context, target_audience)
    topic = post_plan.topic_of(paper_title, hashtags)
    plan = post_plan.plan_post(request, insights, topic)
    return {"hook": plan.hook, "points": plan.points, "topic": plan.topic}


@tool
def check_sentence(
    sentence: str,
    paper_title: str,
    additional_context: str,
    written: list[str],
    limit: int,
    opens_post: bool = False,
    target_audience: str = "professional",
    fact: str = "",
) -> dict[str, Any]:
    """Check one sentence the writer wrote before it goes into the post: what a verifier
    would reject, its length, and repetition of the sentences already written.

    Args:
        sentence: the sentence as written.
        paper_title: the paper's title.
        additional_context: the user's context.
        written: the post's sentences so far.
        limit: the most characters the sentence may have.
        opens_post: the sentence is the hook (no filler, no pronoun with nothing before).
        target_audience: who the post is for.
        fact: the context sentence it was written for; it may say nothing beyond it.
    """
    request = _request(paper_title, additional_context, target_audience)
    problems = post_plan.sentence_problems(
        sentence, request, written=written, limit=limit, first=opens_post, fact=fact
    )
    return {"passed": not problems, "problems": problems}


@tool
def check_question(
    sentence: str,
    paper_title: str,
    additional_context: str,
    written: list[str],
    target_audience: str = "professional",
) -> dict[str, Any]:
    """Check the closing question the writer wrote: a question, within the sentence
    checks, and about what the title and context say.

    Args:
        sentence: the question as written.
        paper_title: the paper's title.
        additional_context: the user's context.
        written: the post's sentences so far.
        target_audience: who the post is for (a question may name them).
    """
    request = _request(paper_title, additional_context, target_audience)
    problems = post_plan.question_problems(sentence, request, written=written)
    return {"passed": not problems, "problems": problems}


def _request(paper_title: str, additional_context: str, target_audience: str) -> PostRequest:
    """The request a writer's tool checks against, unvalidated: its title may be one
    research fetched (arXiv's, which no limit of ours ever checked), and a check must
    never fail a task over it."""
    return PostRequest.model_construct(
        paper_title=paper_title,
        additional_context=additional_context,
        target_audience=target_audience,
    )
