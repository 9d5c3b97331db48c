"""GraphQL types of what the agents produce: the finished post (`PostResult`), the
research notes with the fetched paper (`ResearchNotes`, `Paper`) and the verifiers'
reports (`VerificationReport`). Each is built from its typed model in `db.outputs`
with `from_model`; the task row's JSON is validated into those models first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from db import outputs
from db.models import Task as TaskRow


@strawberry.type(description="The finished post.")
class PostResult:
    content: str
    hashtags: list[str] = strawberry.field(description="without '#'")
    word_count: int
    character_count: int
    approved: bool | None = strawberry.field(
        description="whether both verifiers approved this post (null until the task ends)"
    )
    open_issues: list[str] = strawberry.field(
        description="what the rejecting verifiers still found in the final post"
    )

    @classmethod
    def of_task(cls, row: TaskRow) -> PostResult | None:
        """The post of the task `row`; None before one is written."""
        if not row.content:
            return None
        return cls(
            content=row.content,
            hashtags=list(row.hashtags or []),
            word_count=len(row.content.split()),
            character_count=len(row.content),
            approved=row.approved,
            open_issues=list(row.open_issues or []),
        )


@strawberry.type(
    description="A paper as its arXiv record gives it, fetched by the PaperResearcher."
)
class Paper:
    arxiv_id: str = strawberry.field(description="the version arXiv answered with: 1706.03762v7")
    title: str
    authors: list[str]
    abstract: str
    published: datetime | None = strawberry.field(description="first version on arXiv")
    updated: datetime | None = strawberry.field(description="this version on arXiv")
    primary_category: str | None = strawberry.field(description="arXiv category: cs.CL")
    url: str = strawberry.field(description="the abstract page: https://arxiv.org/abs/<id>")
    pdf_url: str | None

    @classmethod
    def from_model(cls, paper: outputs.PaperRecord) -> Paper:
        """The record research fetched, with its timestamps as `datetime`s."""
        fields = paper.model_dump(exclude={"published", "updated"})
        return cls(**fields, published=paper.published_at, updated=paper.updated_at)


@strawberry.type(description="PaperResearcher's notes.")
class ResearchNotes:
    summary: str
    key_insights: list[str]
    metrics: list[str]
    limitations: list[str]
    source_note: str = strawberry.field(
        description="what was fetched and from where, what failed or was not asked, or "
        "that the notes rest on the request alone"
    )
    sources: JSON = strawberry.field(
        description='[{"kind": "request" | "arxiv" | "web", "title", "url", "characters"}]'
    )
    paper: Paper | None = strawberry.field(
        description="the arXiv record, when paperTitle was an arXiv id or link and the fetch "
        "succeeded (else null; sourceNote says why)"
    )

    @classmethod
    def from_model(cls, notes: outputs.ResearchNotes) -> ResearchNotes:
        """The notes, `sources` as their JSON."""
        fields = notes.model_dump(mode="json", exclude={"fetched"})
        return cls(**fields, paper=Paper.from_model(notes.paper) if notes.paper else None)

    @classmethod
    def of_task(cls, row: TaskRow) -> ResearchNotes | None:
        """The notes stored on the task `row`; None before research ran."""
        if not row.research_notes:
            return None
        return cls.from_model(outputs.ResearchNotes.model_validate(row.research_notes))


@strawberry.type(description="A verifier's report: deterministic checks plus model judgement.")
class VerificationReport:
    agent: str
    kind: str = strawberry.field(description="TECHNICAL or STYLE")
    score: float = strawberry.field(description="0..1; the lower of checks and judgement")
    approved: bool
    issues: list[str]
    checks: JSON = strawberry.field(description="the deterministic checks' findings")
    model_judgement: bool = strawberry.field(description="false when only checks decided")
    model_judgement_error: str | None = strawberry.field(
        description="why the model's judgement was not used (unparseable, or not concrete)"
    )

    @classmethod
    def from_model(cls, report: outputs.VerificationReport | dict[str, Any]) -> VerificationReport:
        """`report`, or its JSON as the task row stores it (validated first; raises
        `pydantic.ValidationError` for JSON that is not a report)."""
        typed = outputs.VerificationReport.model_validate(report)
        return cls(**typed.model_dump(mode="json"))

    @classmethod
    def of_task(cls, row: TaskRow) -> list[VerificationReport]:
        """The reports stored on the task `row`, in the order the verifiers wrote them."""
        return [cls.from_model(r) for r in row.verification_reports or []]
