"""What the PaperResearcher fetches for one run, and how the run reports it.

Owns `gather`: which sources a run asks (arXiv when the title is an arXiv id or link,
web search when a Tavily key is configured), each asked as a reported tool call
(TOOL_CALL / TOOL_RESULT of `fetch_arxiv_paper` or `search_web`: a failure is its
result, `{"ok": false, "error": ...}`); the researcher's `collect_paper_sources` call
then names every source, failure and skip in its note. What a run fetched is
kept in its research notes (`ResearchNotes.fetched`, in the checkpointed graph state), so
a revision's research round or a resumed run reuses it and never fetches again: the
post is written and checked against the same text throughout.

Imports: `agents.teams.arxiv`, `agents.teams.fetched_text`, `agents.teams.tools`,
`agents.teams.nodes`, `db`.
"""

from __future__ import annotations

from typing import Any, Literal

from agents.checks.wording import counted
from agents.teams import arxiv, tools
from agents.teams.fetched_text import nothing_fetched
from agents.teams.nodes import Reporter
from db.models import PostRequest
from db.outputs import Attempt, Fetched, PaperRecord, ResearchNotes, WebResult


async def gather(
    reporter: Reporter, request: PostRequest, earlier: ResearchNotes | None
) -> Fetched:
    """The sources of the run of `request` (the user's, as given), fetched with the
    run's `SourcesConfig` (`reporter.context.sources`), or those of the `earlier`
    research notes of the run when they have any.

    Never raises for a source that fails: the failure is in `attempts` and the notes.
    """
    if earlier is not None and earlier.fetched is not None:
        return earlier.fetched
    config = reporter.context.sources
    arxiv_id = arxiv.parse_arxiv_id(request.paper_title)
    fetched = nothing_fetched(arxiv_id)
    skipped = fetched.skipped
    if arxiv_id is None:
        skipped.append(_not_an_id(request.paper_title))
    if not config.enabled:
        what = (
            f"the arXiv paper {arxiv_id.text} was not fetched"
            if arxiv_id
            else "no source was asked"
        )
        skipped.append(f"Fetching is off (SOURCES_ENABLED=false): {what}.")
    else:
        if arxiv_id is not None:
            await _fetch_arxiv(reporter, arxiv_id, fetched)
        if config.tavily_api_key:
            await _search_web(reporter, _query(request, fetched), fetched)
        else:
            skipped.append("Web search is off: no TAVILY_API_KEY is set.")
    return fetched


async def _fetch_arxiv(reporter: Reporter, arxiv_id: arxiv.ArxivId, fetched: Fetched) -> None:
    config = reporter.context.sources
    args = {
        "arxiv_id": arxiv_id.text,
        "api_url": config.arxiv_api_url,
        "timeout_seconds": config.timeout,
    }
    result = await reporter.tool(tools.fetch_arxiv_paper, args)
    fetched.attempts.append(_attempt("arxiv", arxiv_id.text, result))
    if result["ok"]:
        fetched.paper = PaperRecord.model_validate(result["paper"])


async def _search_web(reporter: Reporter, query: str, fetched: Fetched) -> None:
    config = reporter.context.sources
    assert config.tavily_api_key is not None
    search = tools.web_search_tool(
        api_key=config.tavily_api_key, api_url=config.tavily_api_url, timeout=config.timeout
    )
    result = await reporter.tool(search, {"query": query})
    fetched.attempts.append(_attempt("web", query, result))
    if result["ok"]:
        fetched.web = [WebResult.model_validate(r) for r in result["results"]]


def _attempt(source: Literal["arxiv", "web"], query: str, result: dict[str, Any]) -> Attempt:
    return Attempt(
        source=source,
        query=query,
        ok=bool(result["ok"]),
        error=result.get("error"),
        seconds=float(result.get("seconds", 0.0)),
    )


def _query(request: PostRequest, fetched: Fetched) -> str:
    """What to search the web for: the paper's title (arXiv's, when it was fetched)."""
    if fetched.paper:
        return fetched.paper.title
    if fetched.arxiv_id:
        return f"arXiv {fetched.arxiv_id}"
    return request.paper_title


def _not_an_id(title: str) -> str:
    if arxiv.mentions_arxiv(title):
        return (
            "The title names arXiv but is not an arXiv id or link PostAssist recognises "
            "(1706.03762, arXiv:1706.03762v7, https://arxiv.org/abs/1706.03762), so arXiv "
            "was not asked."
        )
    return "arXiv was not asked: the title is not an arXiv id or link."


def summary_suffix(fetched: Fetched) -> str:
    """What the researcher's AGENT_FINISHED summary adds: ", arXiv 1706.03762v7",
    ", 3 web results", ", no source fetched" (only when one was asked)."""
    parts = []
    if fetched.paper:
        parts.append(f"arXiv {fetched.paper.arxiv_id}")
    if fetched.web:
        parts.append(counted(len(fetched.web), "web result"))
    if not parts and fetched.attempts:
        parts.append("no source fetched")
    return "".join(f", {p}" for p in parts)
