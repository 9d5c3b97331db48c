"""What the text research fetched adds to a run: the request the writer and both
verifiers work from (`effective_request`: arXiv's title in place of an id, the fetched
blocks added to the context within its limit), the fetched prose for key sentences and
metrics, and the research notes' `sources` and `source_note`.

Imports: `agents.teams.arxiv` (an id of the title), `agents.checks.wording`, `db`.
"""

from __future__ import annotations

import re

from agents.checks.wording import counted
from agents.teams.arxiv import ArxivId
from db.models import CONTEXT_MAX, PostRequest
from db.outputs import ArxivSource, Fetched, PaperRecord, Source, WebResult, WebSource

#: Authors named in the context; a longer list ends with "and N more".
MAX_AUTHORS = 10

_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def nothing_fetched(arxiv_id: ArxivId | None = None) -> Fetched:
    """An empty `Fetched` for a run whose title is `arxiv_id` (or no id)."""
    return Fetched(arxiv_id=arxiv_id.text if arxiv_id else None)


def effective_request(request: PostRequest, fetched: Fetched | None) -> PostRequest:
    """`request` as the writer and both verifiers work from it: the arXiv title in place
    of an id the user gave, and the context with the fetched text added
    (`grounding_context`). Without anything fetched, `request` itself."""
    if fetched is None or not fetched.has_text:
        return request
    title = fetched.paper.title if fetched.paper else request.paper_title
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
    if fetched is None:
        return []
    blocks = [paper_block(fetched.paper)] if fetched.paper else []
    return blocks + [web_block(r) for r in fetched.web]


def paper_block(paper: PaperRecord) -> str:
    """The arXiv record as context: a line naming the paper, its authors, its first
    arXiv date and its link, then the abstract as arXiv gives it."""
    published = human_date(paper.published)
    line = f'"{paper.title}" by {authors_text(paper.authors)}'
    line += f" (arXiv {paper.arxiv_id}, {paper.url})"
    line += f", first published on arXiv on {published}." if published else "."
    return f"{line}\n{paper.abstract}"


def web_block(result: WebResult) -> str:
    """A web result as context: its title and link, then its snippet."""
    return f'Web page "{result.title}" ({result.url}):\n{result.content}'


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
    if fetched is None:
        return ""
    parts = [fetched.paper.abstract] if fetched.paper else []
    return "\n".join(parts + [r.content for r in fetched.web])


def source_entries(fetched: Fetched | None) -> list[Source]:
    """The research notes' `sources` for what was fetched: an `ArxivSource` for the
    paper and a `WebSource` per web result (`characters`: of the text added)."""
    if fetched is None:
        return []
    out: list[Source] = []
    if paper := fetched.paper:
        out.append(
            ArxivSource(
                id=paper.arxiv_id,
                title=paper.title,
                url=paper.url,
                published=paper.published[:10],
                characters=len(paper.abstract),
            )
        )
    out += [WebSource(title=r.title, url=r.url, characters=len(r.content)) for r in fetched.web]
    return out


def source_note(context: str, fetched: Fetched | None) -> str:
    """The research notes' `source_note`: what was fetched and from where, what failed
    or was not asked and why, and, when nothing was fetched, that the notes rest only
    on the request. `context` is the user's (to tell what did not fit)."""
    fetched = fetched or nothing_fetched()
    said: list[str] = []
    if paper := fetched.paper:
        said.append(
            f'Fetched from arXiv: {paper.arxiv_id}, "{paper.title}" ({paper.url}): '
            "its title, authors, date and abstract join the context the post is checked "
            "against."
        )
    if web := fetched.web:
        said.append(f"Web search (Tavily): {counted(len(web), 'result')}, joined to the context.")
    for attempt in fetched.attempts:
        if not attempt.ok:
            name = "arXiv" if attempt.source == "arxiv" else "Web search (Tavily)"
            said.append(f"{name} failed for {attempt.query!r}: {attempt.error}.")
    said += fetched.skipped
    if dropped := left_out(context, fetched):
        said.append(
            f"{counted(dropped, 'fetched block')} left out: the context would pass its "
            f"{CONTEXT_MAX}-character limit."
        )
    if not fetched.has_text:
        said.append(
            "No source was fetched: these notes rest only on the title and the context "
            "given with the request."
        )
    return " ".join(said)
