"""arXiv: recognising an arXiv id or link (`parse_arxiv_id`), and fetching a paper's
record from the arXiv API (`fetch_arxiv`, `GET {api_url}/query?id_list=...`) and
reading its Atom answer (`parse_arxiv_feed`) into a `db.outputs.PaperRecord`.

Every failure is a `agents.teams.sources.SourceError` whose message says what went
wrong; nothing here invents a record.

Imports: `agents.teams.sources` (its limits and errors), `db` (plus httpx and
feedparser).
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from dataclasses import dataclass
from typing import Any

import feedparser
import httpx

from agents.teams.sources import (
    ARXIV_API_URL,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    USER_AGENT,
    SourceError,
    squash,
)
from db.models import TITLE_MAX
from db.outputs import PaperRecord

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
    title, abstract = squash(entry.get("title", "")), squash(entry.get("summary", ""))
    if not title or not abstract:
        raise SourceError(f"arXiv's entry for {arxiv_id.text} has no title or abstract")
    category = entry.get("arxiv_primary_category") or {}
    return PaperRecord(
        arxiv_id=got.text,
        title=title[:TITLE_MAX],
        authors=[squash(a.get("name", "")) for a in entry.get("authors", []) if a.get("name")],
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
            return squash(entry.get("summary", "")) or "an error without a message"
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


def _iso(parsed: time.struct_time | None) -> str:
    if parsed is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed)
