"""Real sources of a paper: whether and where research fetches (`SourcesConfig`), the
limits of a fetch, `SourceError`, and web search through LangChain's Tavily integration
(`search_web`, imported only when it is used).

The arXiv API is in `agents.teams.arxiv`, what the fetched text adds to a request in
`agents.teams.fetched_text`, and the records research keeps (`PaperRecord`, `WebResult`,
`Attempt`, `Fetched`) in `db.outputs`. Nothing here invents a source: every failure is
a `SourceError` whose message says what went wrong, and the caller records it.

Imports: `db` only (LangChain's Tavily integration when a search runs).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from db.outputs import WebResult

#: The arXiv API's root (its Atom query endpoint is `{root}/query`), per
#: https://info.arxiv.org/help/api/user-manual.html.
ARXIV_API_URL = "https://export.arxiv.org/api"
#: Seconds one source request may take, connect to last byte. arXiv's API usually
#: answers one id in well under 2 s; 10 s leaves room for a slow day without holding a
#: run (GENERATION_TIMEOUT_SECONDS is 900) for long.
DEFAULT_TIMEOUT = 10.0
#: Web results kept per search, and characters kept of each (a snippet, not a page).
MAX_WEB_RESULTS = 3
MAX_WEB_CHARS = 600
#: Largest answer read from a source, in bytes: one arXiv entry is about 5 KB.
MAX_RESPONSE_BYTES = 1_000_000
USER_AGENT = "PostAssist/0.1 (research notes for a LinkedIn post; one request per task)"


class SourceError(Exception):
    """A source could not give what was asked: unreachable, too slow, an HTTP error, no
    such paper, or an answer that is not what the API returns. The message is one
    sentence for the research notes and the event log."""


@dataclass(frozen=True)
class SourcesConfig:
    """Whether and where research fetches. The default fetches nothing, so a run built
    without settings (tests, benchmarks) never reaches the network; `graph.settings`
    builds the configured one.

    - `enabled`: False: no source is asked, whatever else is set.
    - `arxiv_api_url`: the arXiv API root (`{root}/query?id_list=...`).
    - `tavily_api_key`: web search through Tavily when set (None: no web search).
    - `tavily_api_url`: Tavily's API root (None: the integration's own default).
    - `timeout`: seconds per source request (`DEFAULT_TIMEOUT`).
    """

    enabled: bool = False
    arxiv_api_url: str = ARXIV_API_URL
    tavily_api_key: str | None = field(default=None, repr=False)
    tavily_api_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT


# --- Tavily -----------------------------------------------------------------------------


async def search_web(
    query: str,
    *,
    api_key: str,
    api_url: str | None = None,
    time_limit: float = DEFAULT_TIMEOUT,
    max_results: int = MAX_WEB_RESULTS,
) -> list[WebResult]:
    """Search the web for `query` through LangChain's Tavily integration
    (`langchain_tavily.TavilySearch`, the optional extra `sources`), at most
    `max_results` results of at most `MAX_WEB_CHARS` characters each.

    `api_url` replaces Tavily's API root (tests point it at a local server). Raises
    `SourceError` when the integration is not installed, Tavily answers an error or
    nothing, or takes longer than `time_limit` seconds.
    """
    try:
        from langchain_tavily import TavilySearch
    except ImportError:
        raise SourceError(
            "web search needs langchain-tavily (pip install 'postassist[sources]')"
        ) from None
    kwargs: dict[str, Any] = {"tavily_api_key": api_key, "max_results": max_results}
    if api_url:
        kwargs["api_base_url"] = api_url.rstrip("/")
    search = TavilySearch(**kwargs)
    try:
        async with asyncio.timeout(time_limit):
            answer = await search.ainvoke({"query": query})
    except TimeoutError:
        raise SourceError(f"Tavily did not answer within {time_limit:g} s") from None
    except Exception as exc:  # the integration raises ToolException for no results
        raise SourceError(f"Tavily search failed: {_one_line(exc)}") from None
    if not isinstance(answer, dict) or "error" in answer:
        error = answer.get("error") if isinstance(answer, dict) else answer
        raise SourceError(f"Tavily search failed: {_one_line(error)}")
    results = [_web_result(r) for r in answer.get("results") or [] if isinstance(r, dict)]
    results = [r for r in results if r.url and r.content][:max_results]
    if not results:
        raise SourceError(f"Tavily found nothing for {query!r}")
    return results


def _web_result(raw: dict[str, Any]) -> WebResult:
    content = squash(raw.get("content") or "")
    if len(content) > MAX_WEB_CHARS:
        content = content[: MAX_WEB_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return WebResult(
        title=squash(raw.get("title") or "")[:200], url=str(raw.get("url") or ""), content=content
    )


def _one_line(error: Any) -> str:
    text = squash(str(error)) or type(error).__name__
    return text[:200]


def squash(text: Any) -> str:
    """`text` on one line with single spaces (arXiv wraps titles and abstracts at ~80
    columns; snippets carry line breaks)."""
    return " ".join(str(text).split())
