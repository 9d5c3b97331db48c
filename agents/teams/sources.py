"""Real sources of a paper: recognising an arXiv id or URL, fetching the paper's record
from the arXiv API and web results from Tavily, and the context that the fetched text
adds to a request.

Owns: `SourcesConfig` (where and whether to fetch), `parse_arxiv_id`, `fetch_arxiv` and
`parse_arxiv_feed` (the Atom API, `GET {api_url}/query?id_list=...`), `search_web`
(LangChain's Tavily integration, imported only when it is used), the JSON records that
research keeps in the graph state (`PaperRecord`, `WebResult`, `Attempt`, `Fetched`),
and `effective_request`: the request with the fetched title and text that the writer
and both verifiers work from. Nothing here invents a source: every failure is a
`SourceError` whose message says what went wrong, and the caller records it.

Imports: `agents.checks.wording` and `db.models` (plus httpx and feedparser); the tools and the
researcher call in here.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import feedparser
import httpx

from agents.checks.wording import counted
from db.models import CONTEXT_MAX, TITLE_MAX, PostRequest

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
#: Authors named in the context; a longer list ends with "and N more".
MAX_AUTHORS = 10
USER_AGENT = "PostAssist/0.1 (research notes for a LinkedIn post; one request per task)"

_MONTHS = (
    "January February March April May June July August September October November December"
).split()


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


# --- arXiv ids --------------------------------------------------------------------------

#: New-style ids (April 2007 on): YYMM.NNNN until 1412, YYMM.NNNNN from 1501.
_NEW_ID = r"(?P<new>(?P<yymm>\d{2}(?:0[1-9]|1[0-2]))\.(?P<num>\d{4,5}))"
#: Old-style ids (to March 2007): archive[.SUBJECT]/YYMMNNN, e.g. hep-th/9901001.
_OLD_ID = r"(?P<old>[a-z]+(?:-[a-z]+)?(?:\.[A-Z]{2})?/\d{2}(?:0[1-9]|1[0-2])\d{3})"
_ID = rf"(?:{_NEW_ID}|{_OLD_ID})(?P<version>v[1-9]\d{{0,2}})?"
_ARXIV_FORMS = re.compile(
    r"\s*(?:"
    r"(?P<url>(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)"
    r"|(?:https?://(?:dx\.)?doi\.org/|doi\s*:\s*)?10\.48550/arxiv\."  # arXiv's DOI
    r"|arxiv\s*:\s*|arxiv\s+"
    rf")?{_ID}"
    r"(?(url)(?:\.pdf)?/?(?:[?#]\S*)?)\s*",  # a link may end in .pdf, /, ?query or #part
    re.IGNORECASE,
)
_ARXIV_MENTION = re.compile(r"\barxiv\b", re.IGNORECASE)


@dataclass(frozen=True)
class ArxivId:
    """An arXiv identifier: `base` ("1706.03762", "hep-th/9901001") and `version`
    ("v7", or "" for the newest)."""

    base: str
    version: str = ""

    @property
    def text(self) -> str:
        """The id as the API's `id_list` takes it: "1706.03762v7"."""
        return self.base + self.version

    @property
    def abs_url(self) -> str:
        """The paper's abstract page (the link a post may carry)."""
        return f"https://arxiv.org/abs/{self.text}"


def parse_arxiv_id(text: str) -> ArxivId | None:
    """The arXiv id that `text` is, as a whole, or None for anything else (a title).

    Accepted: "1706.03762", "1706.03762v7", "arXiv:1706.03762", "hep-th/9901001",
    "https://arxiv.org/abs/1706.03762", "arxiv.org/pdf/1706.03762v7.pdf",
    "export.arxiv.org/abs/...", "/html/...", and the DOI "10.48550/arXiv.1706.03762".
    New-style numbers have 4 digits up to 1412 and 5 from 1501 (arXiv's scheme), and
    start at 0704; a title that merely contains an id is not one.
    """
    match = _ARXIV_FORMS.fullmatch(text)
    if match is None:
        return None
    if match.group("new"):
        yymm, digits = match.group("yymm"), len(match.group("num"))
        if yymm < "0704" or digits != (5 if yymm >= "1501" else 4):
            return None
        base = match.group("new")
    else:
        archive, number = match.group("old").split("/")
        name, _, subject = archive.partition(".")  # math.GT/0309136: GT is a subject class
        base = f"{name.lower()}{'.' + subject.upper() if subject else ''}/{number}"
    return ArxivId(base, (match.group("version") or "").lower())


def mentions_arxiv(text: str) -> bool:
    """True when `text` names arXiv (a link or "arXiv:" that `parse_arxiv_id` did not
    take as an id): the notes then say the id was not recognised."""
    return bool(_ARXIV_MENTION.search(text))


# --- records kept in the graph state ---------------------------------------------------


class PaperRecord(TypedDict):
    """A paper as its arXiv entry gives it. `arxiv_id` is the version arXiv answered
    with ("1706.03762v7"); `published`/`updated` are ISO 8601 UTC timestamps from the
    entry; `url` is the abstract page of the id asked for; `pdf_url` the entry's PDF link."""

    arxiv_id: str
    title: str
    authors: list[str]
    abstract: str
    published: str
    updated: str
    primary_category: str | None
    url: str
    pdf_url: str | None


class WebResult(TypedDict):
    """One web search result: its page `title`, `url` and a snippet of its `content`
    (at most `MAX_WEB_CHARS` characters)."""

    title: str
    url: str
    content: str


class Attempt(TypedDict):
    """One source asked: `source` ("arxiv" or "web"), what was asked (`query`), whether
    it answered (`ok`), `error` (one sentence) when not, and `seconds` it took."""

    source: Literal["arxiv", "web"]
    query: str
    ok: bool
    error: str | None
    seconds: float


class Fetched(TypedDict):
    """What research fetched for a run, kept in its notes (`research["fetched"]`) so a
    resumed or revised run reuses it instead of fetching again.

    - `arxiv_id`: the id the title named (None: the title is not one);
    - `paper`: its arXiv record (None: not asked, or the fetch failed);
    - `web`: web results (empty: no search, or none found);
    - `attempts`: each source asked, in order; `skipped`: sentences saying which source
      was not asked and why (fetching off, no key, the integration missing).
    """

    arxiv_id: str | None
    paper: PaperRecord | None
    web: list[WebResult]
    attempts: list[Attempt]
    skipped: list[str]


def nothing_fetched(arxiv_id: ArxivId | None = None) -> Fetched:
    """An empty `Fetched` for a run whose title is `arxiv_id` (or no id)."""
    return Fetched(
        arxiv_id=arxiv_id.text if arxiv_id else None, paper=None, web=[], attempts=[], skipped=[]
    )


# --- the arXiv API ----------------------------------------------------------------------


async def fetch_arxiv(
    arxiv_id: ArxivId,
    *,
    api_url: str = ARXIV_API_URL,
    time_limit: float = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PaperRecord:
    """Fetch one paper's record: `GET {api_url}/query?id_list=<id>&max_results=1`.

    `time_limit` (seconds) bounds the whole exchange. Raises `SourceError` when the API
    cannot be reached or is too slow, answers an HTTP error or more than
    `MAX_RESPONSE_BYTES`, has no such paper, or answers something that is not arXiv's
    Atom feed.
    """
    url = f"{api_url.rstrip('/')}/query"
    params = {"id_list": arxiv_id.text, "max_results": "1"}
    try:
        async with asyncio.timeout(time_limit):
            body, status = await _get(url, params, time_limit=time_limit, transport=transport)
    except TimeoutError:
        raise SourceError(f"the arXiv API did not answer within {time_limit:g} s") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"the arXiv API could not be reached ({type(exc).__name__})") from None
    if status != 200:
        # arXiv answers a malformed id with HTTP 400 and an error entry that says why
        detail = _feed_error(body)
        raise SourceError(
            f"the arXiv API answered HTTP {status}" + (f": {detail}" if detail else "")
        )
    return parse_arxiv_feed(body, arxiv_id)


async def _get(
    url: str,
    params: dict[str, str],
    *,
    time_limit: float,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[bytes, int]:
    """GET `url`, reading at most `MAX_RESPONSE_BYTES`; returns (body, status)."""
    headers = {"User-Agent": USER_AGENT}
    async with (
        httpx.AsyncClient(
            timeout=time_limit, transport=transport, follow_redirects=True, headers=headers
        ) as client,
        client.stream("GET", url, params=params) as response,
    ):
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise SourceError(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks), response.status_code


def parse_arxiv_feed(body: bytes | str, arxiv_id: ArxivId) -> PaperRecord:
    """The record of `arxiv_id` in an arXiv API answer (an Atom feed).

    Raises `SourceError` when the feed is not Atom, carries arXiv's error entry (its
    `<summary>` says why, e.g. "incorrect id format for 1234.5678"), has no entry (no
    such paper), or its entry is another paper or has no title or abstract.
    """
    data = body.encode() if isinstance(body, str) else body
    feed = feedparser.parse(io.BytesIO(data))  # a stream: feedparser never fetches it
    if feed.bozo and not feed.entries:
        raise SourceError("the arXiv API's answer is not an Atom feed")
    if error := _error_entry(feed):
        raise SourceError(f"arXiv refused the id {arxiv_id.text}: {error}")
    entries = [e for e in feed.entries if _entry_id(e) is not None]
    if not entries:
        raise SourceError(f"arXiv has no paper with the id {arxiv_id.text}")
    entry = entries[0]
    got = _entry_id(entry)
    assert got is not None
    if got.base != arxiv_id.base or (arxiv_id.version and got.version != arxiv_id.version):
        raise SourceError(f"arXiv answered with {got.text} when asked for {arxiv_id.text}")
    title, abstract = _squash(entry.get("title", "")), _squash(entry.get("summary", ""))
    if not title or not abstract:
        raise SourceError(f"arXiv's entry for {arxiv_id.text} has no title or abstract")
    category = entry.get("arxiv_primary_category") or {}
    return PaperRecord(
        arxiv_id=got.text,
        title=title[:TITLE_MAX],
        authors=[_squash(a.get("name", "")) for a in entry.get("authors", []) if a.get("name")],
        abstract=abstract,
        published=_iso(entry.get("published_parsed")),
        updated=_iso(entry.get("updated_parsed")),
        primary_category=category.get("term"),
        url=arxiv_id.abs_url,
        pdf_url=_https(_link(entry, rel="related", title="pdf")),
    )


def _entry_id(entry: Any) -> ArxivId | None:
    """The id of an entry from its `<id>` (http(s)://arxiv.org/abs/<id><version>)."""
    text = str(entry.get("id", ""))
    if "/api/errors" in text:
        return None
    return parse_arxiv_id(text)


def _error_entry(feed: Any) -> str | None:
    """The message of arXiv's error entry (`<id>http://arxiv.org/api/errors#...</id>`)."""
    for entry in feed.entries:
        if "/api/errors" in str(entry.get("id", "")):
            return _squash(entry.get("summary", "")) or "an error without a message"
    return None


def _feed_error(body: bytes) -> str | None:
    try:
        return _error_entry(feedparser.parse(io.BytesIO(body)))
    except Exception:  # an HTML error page: the status says enough
        return None


def _link(entry: Any, *, rel: str, title: str | None = None) -> str | None:
    for link in entry.get("links", []):
        if link.get("rel") == rel and (title is None or link.get("title") == title):
            return link.get("href")
    return None


def _https(url: str | None) -> str | None:
    return re.sub(r"^http://", "https://", url) if url else None


def _squash(text: str) -> str:
    """arXiv wraps titles and abstracts at ~80 columns: one line, single spaces."""
    return " ".join(str(text).split())


def _iso(parsed: time.struct_time | None) -> str:
    if parsed is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed)


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
    results = [r for r in results if r["url"] and r["content"]][:max_results]
    if not results:
        raise SourceError(f"Tavily found nothing for {query!r}")
    return results


def _web_result(raw: dict[str, Any]) -> WebResult:
    content = _squash(raw.get("content") or "")
    if len(content) > MAX_WEB_CHARS:
        content = content[: MAX_WEB_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return WebResult(
        title=_squash(raw.get("title") or "")[:200], url=str(raw.get("url") or ""), content=content
    )


def _one_line(error: Any) -> str:
    text = _squash(str(error)) or type(error).__name__
    return text[:200]


# --- what the fetched text adds to a request ------------------------------------------


def effective_request(request: PostRequest, fetched: Fetched | None) -> PostRequest:
    """`request` as the writer and both verifiers work from it: the arXiv title in place
    of an id the user gave, and the context with the fetched text added
    (`grounding_context`). Without anything fetched, `request` itself."""
    if not fetched or not (fetched.get("paper") or fetched.get("web")):
        return request
    paper = fetched.get("paper")
    title = paper["title"] if paper else request.paper_title
    context = grounding_context(request.additional_context, fetched)
    return request.model_copy(update={"paper_title": title, "additional_context": context})


def grounding_context(context: str, fetched: Fetched | None) -> str:
    """`context` (the user's) followed by the fetched blocks, in order: the arXiv paper
    (`paper_block`), then each web result (`web_block`). A block is added whole while
    the total stays within `CONTEXT_MAX` characters (the request's own limit, sized for
    the bundled model's window); one that does not fit is left out (`left_out`)."""
    text = context
    for block in _blocks(fetched):
        joined = f"{text}\n\n{block}" if text else block
        if len(joined) <= CONTEXT_MAX:
            text = joined
    return text


def left_out(context: str, fetched: Fetched | None) -> int:
    """How many fetched blocks `grounding_context` leaves out for want of room."""
    full = grounding_context(context, fetched)
    return sum(1 for block in _blocks(fetched) if block not in full)


def _blocks(fetched: Fetched | None) -> list[str]:
    if not fetched:
        return []
    blocks = [paper_block(fetched["paper"])] if fetched.get("paper") else []
    return blocks + [web_block(r) for r in fetched.get("web") or []]


def paper_block(paper: PaperRecord) -> str:
    """The arXiv record as context: a line naming the paper, its authors, its first
    arXiv date and its link, then the abstract as arXiv gives it."""
    published = human_date(paper["published"])
    line = f'"{paper["title"]}" by {authors_text(paper["authors"])}'
    line += f" (arXiv {paper['arxiv_id']}, {paper['url']})"
    line += f", first published on arXiv on {published}." if published else "."
    return f"{line}\n{paper['abstract']}"


def web_block(result: WebResult) -> str:
    """A web result as context: its title and link, then its snippet."""
    return f'Web page "{result["title"]}" ({result["url"]}):\n{result["content"]}'


def authors_text(authors: list[str]) -> str:
    """ "A", "A and B", "A, B and C"; past `MAX_AUTHORS`, "A, B, ... and 12 more"."""
    if not authors:
        return "unnamed authors"
    if len(authors) > MAX_AUTHORS:
        return ", ".join(authors[:MAX_AUTHORS]) + f" and {len(authors) - MAX_AUTHORS} more"
    if len(authors) == 1:
        return authors[0]
    return ", ".join(authors[:-1]) + " and " + authors[-1]


def human_date(iso: str) -> str:
    """ "2017-06-12T17:57:34Z" -> "12 June 2017" (the form the date checks read); ""
    when `iso` is not such a timestamp."""
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", iso or "")
    if not match:
        return ""
    year, month, day = match.groups()
    return f"{int(day)} {_MONTHS[int(month) - 1]} {year}"


def fetched_prose(fetched: Fetched | None) -> str:
    """The fetched text that reads as prose (the abstract, the web snippets), for key
    sentences and metrics; the lines naming the paper and its link are left out."""
    if not fetched:
        return ""
    parts = [fetched["paper"]["abstract"]] if fetched.get("paper") else []
    return "\n".join(parts + [r["content"] for r in fetched.get("web") or []])


def source_entries(fetched: Fetched | None) -> list[dict[str, Any]]:
    """The research notes' `sources` for what was fetched: one `{"kind": "arxiv", "id",
    "title", "url", "published", "characters"}` and one `{"kind": "web", "title", "url",
    "characters"}` per web result (`characters`: of the text added)."""
    if not fetched:
        return []
    out: list[dict[str, Any]] = []
    if paper := fetched.get("paper"):
        out.append(
            {
                "kind": "arxiv",
                "id": paper["arxiv_id"],
                "title": paper["title"],
                "url": paper["url"],
                "published": paper["published"][:10],
                "characters": len(paper["abstract"]),
            }
        )
    for r in fetched.get("web") or []:
        out.append(
            {"kind": "web", "title": r["title"], "url": r["url"], "characters": len(r["content"])}
        )
    return out


def source_note(context: str, fetched: Fetched | None) -> str:
    """The research notes' `source_note`: what was fetched and from where, what failed
    or was not asked and why, and, when nothing was fetched, that the notes rest only
    on the request. `context` is the user's (to tell what did not fit)."""
    fetched = fetched or nothing_fetched()
    said: list[str] = []
    if paper := fetched.get("paper"):
        said.append(
            f'Fetched from arXiv: {paper["arxiv_id"]}, "{paper["title"]}" ({paper["url"]}): '
            "its title, authors, date and abstract join the context the post is checked "
            "against."
        )
    if web := fetched.get("web"):
        said.append(f"Web search (Tavily): {counted(len(web), 'result')}, joined to the context.")
    for attempt in fetched.get("attempts") or []:
        if not attempt["ok"]:
            name = "arXiv" if attempt["source"] == "arxiv" else "Web search (Tavily)"
            said.append(f"{name} failed for {attempt['query']!r}: {attempt['error']}.")
    said += fetched.get("skipped") or []
    if dropped := left_out(context, fetched):
        said.append(
            f"{counted(dropped, 'fetched block')} left out: the context would pass its "
            f"{CONTEXT_MAX}-character limit."
        )
    if not (fetched.get("paper") or fetched.get("web")):
        said.append(
            "No source was fetched: these notes rest only on the title and the context "
            "given with the request."
        )
    return " ".join(said)
