"""The typed shapes of what the agents produce: research notes (with what research
fetched from real sources), the draft of the post, and the verifiers' reports.

They live in `db` because all three layers read them: `agents` builds them, the task
row stores the notes and the reports in its JSON columns (`Task.research_notes`,
`Task.verification_reports`, set through `db.events.TaskResult`), the graph state
(checkpointed by LangGraph) holds them, and `graph` shows them. `db` imports neither of
the others, so the shapes sit at the bottom, like `db.snapshot.Teams`.

Stored as plain JSON everywhere (`model.model_dump(mode="json")`, read back with
`Model.model_validate(data)`), with the keys the agents wrote before these models
existed: every field a row or checkpoint may lack has a default, so old tasks and
checkpoints load unchanged. Unknown keys are ignored on reading.

Imports: pydantic only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class PaperRecord(BaseModel):
    """A paper as its arXiv entry gives it. `arxiv_id` is the version arXiv answered
    with ("1706.03762v7"); `published`/`updated` are ISO 8601 UTC timestamps from the
    entry ("2017-06-12T17:57:34Z", "" when absent); `url` is the abstract page of the id
    asked for; `pdf_url` the entry's PDF link."""

    arxiv_id: str
    title: str
    authors: list[str] = Field(default_factory=list)
    abstract: str = ""
    published: str = ""
    updated: str = ""
    primary_category: str | None = None
    url: str
    pdf_url: str | None = None

    @property
    def published_at(self) -> datetime | None:
        """`published` as an aware UTC `datetime`; None when absent."""
        return _timestamp(self.published)

    @property
    def updated_at(self) -> datetime | None:
        """`updated` as an aware UTC `datetime`; None when absent."""
        return _timestamp(self.updated)


def _timestamp(text: str | None) -> datetime | None:
    """An arXiv ISO 8601 UTC timestamp ("2017-06-12T17:57:34Z"); None when empty."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class WebResult(BaseModel):
    """One web search result: its page `title`, `url` and a snippet of its `content`."""

    title: str
    url: str
    content: str


class Attempt(BaseModel):
    """One source asked: `source` ("arxiv" or "web"), what was asked (`query`), whether
    it answered (`ok`), `error` (one sentence) when not, and `seconds` it took."""

    source: Literal["arxiv", "web"]
    query: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0


class Fetched(BaseModel):
    """What research fetched for a run, kept in its notes (`ResearchNotes.fetched`) so a
    resumed or revised run reuses it instead of fetching again.

    - `arxiv_id`: the id the title named (None: the title is not one);
    - `paper`: its arXiv record (None: not asked, or the fetch failed);
    - `web`: web results (empty: no search, or none found);
    - `attempts`: each source asked, in order; `skipped`: sentences saying which source
      was not asked and why (fetching off, no key, the integration missing).
    """

    arxiv_id: str | None = None
    paper: PaperRecord | None = None
    web: list[WebResult] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)

    @property
    def has_text(self) -> bool:
        """True when a paper or a web result was fetched (its text joins the context)."""
        return self.paper is not None or bool(self.web)


class RequestSource(BaseModel):
    """The request itself as a source: its title and the characters of its context."""

    kind: Literal["request"] = "request"
    title: str
    characters: int


class ArxivSource(BaseModel):
    """The fetched arXiv paper as a source: its `id` (with version), `title`, abstract
    page `url`, first-version date `published` ("2017-06-12", "" when absent) and the
    characters of its abstract."""

    kind: Literal["arxiv"] = "arxiv"
    id: str
    title: str
    url: str
    published: str
    characters: int


class WebSource(BaseModel):
    """A web result as a source: its `title`, `url` and the characters of its snippet."""

    kind: Literal["web"] = "web"
    title: str
    url: str
    characters: int


#: One entry of `ResearchNotes.sources`, told apart by its `kind`.
Source = Annotated[RequestSource | ArxivSource | WebSource, Field(discriminator="kind")]


class ResearchNotes(BaseModel):
    """The PaperResearcher's notes: `summary`, `key_insights` (the context's own
    sentences first), `metrics` (numbers of the sources, as written plainly),
    `limitations`, `sources` (the request, then each fetched source), `source_note`
    (what was fetched, what failed or was not asked) and `fetched` (what was fetched;
    None in notes written before research fetched anything)."""

    summary: str = ""
    key_insights: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    source_note: str = ""
    fetched: Fetched | None = None

    @property
    def paper(self) -> PaperRecord | None:
        """The arXiv record research fetched, or None."""
        return self.fetched.paper if self.fetched else None


class PostDraft(BaseModel):
    """The LinkedInCreator's post: the full `content` and its `hashtags` (without '#')."""

    content: str = ""
    hashtags: list[str] = Field(default_factory=list)


class VerificationReport(BaseModel):
    """A verifier's report: deterministic checks plus the model's judgement.

    `agent` names the verifier, `kind` is "TECHNICAL" or "STYLE", `score` 0..1 (the
    lower of the checks' and a concrete judgement's), `approved` needs the checks to
    pass and a score above the approval threshold, `issues` are shown to people,
    `checks` holds the deterministic checks' findings (JSON), `model_judgement` tells
    whether the model's judgement counted, and `model_judgement_error` why not.
    """

    agent: str
    kind: Literal["TECHNICAL", "STYLE"]
    score: float
    approved: bool
    issues: list[str] = Field(default_factory=list)
    checks: dict[str, Any] = Field(default_factory=dict)
    model_judgement: bool = False
    model_judgement_error: str | None = None


__all__ = [
    "ArxivSource",
    "Attempt",
    "Fetched",
    "PaperRecord",
    "PostDraft",
    "RequestSource",
    "ResearchNotes",
    "Source",
    "VerificationReport",
    "WebResult",
    "WebSource",
]
