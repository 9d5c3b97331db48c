"""GraphQL types, separate from the tables; each built with `from_model`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from graphql import OperationType
from strawberry.scalars import JSON

from agents.teams.state import DISPLAY_NAMES
from db import models as db_models
from db.events import is_terminal_event
from db.models import AgentLog as AgentLogRow
from db.models import Task as TaskRow
from db.snapshot import AgentSnapshot, Teams, TeamSnapshot
from graph.api.context import Info
from graph.api.pagination import Connection

TaskStatus = strawberry.enum(db_models.TaskStatus, description="Lifecycle of a task.")
Tone = strawberry.enum(db_models.Tone, description="The voice of the post.")
WorkStatus = strawberry.enum(
    db_models.WorkStatus, description="Status of a team or an agent within a task."
)
EventKind = strawberry.enum(db_models.EventKind, description="What a task event records.")
TaskKind = strawberry.enum(
    db_models.TaskKind,
    description="GENERATE: a post from a paper; VERIFY: checks of a given post.",
)


@strawberry.type(description="One agent's state within a task.")
class AgentProgress:
    name: str
    display_name: str
    status: WorkStatus
    current_activity: str | None
    progress: float = strawberry.field(description="0..1")
    last_update: datetime | None
    error: str | None

    @classmethod
    def from_model(cls, agent: AgentSnapshot) -> AgentProgress:
        return cls(
            name=agent.name,
            display_name=DISPLAY_NAMES.get(agent.name, agent.name),
            status=agent.status,
            current_activity=agent.activity,
            progress=agent.progress,
            last_update=agent.updated_at,
            error=agent.error,
        )


@strawberry.type(description="One team's state within a task.")
class TeamProgress:
    name: str
    display_name: str
    status: WorkStatus
    progress: float = strawberry.field(description="agents completed / agents, 0..1")
    started_at: datetime | None
    completed_at: datetime | None
    agents: list[AgentProgress]

    @classmethod
    def from_model(cls, team: TeamSnapshot) -> TeamProgress:
        return cls(
            name=team.name,
            display_name=DISPLAY_NAMES.get(team.name, team.name),
            status=team.status,
            progress=team.progress,
            started_at=team.started_at,
            completed_at=team.completed_at,
            agents=[AgentProgress.from_model(a) for a in team.agents],
        )


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
    def from_model(cls, data: dict[str, Any]) -> Paper:
        return cls(
            arxiv_id=data["arxiv_id"],
            title=data["title"],
            authors=list(data.get("authors", [])),
            abstract=data.get("abstract", ""),
            published=_timestamp(data.get("published")),
            updated=_timestamp(data.get("updated")),
            primary_category=data.get("primary_category"),
            url=data["url"],
            pdf_url=data.get("pdf_url"),
        )


def _timestamp(text: str | None) -> datetime | None:
    """An arXiv ISO 8601 UTC timestamp ("2017-06-12T17:57:34Z"); None when absent."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
    def from_model(cls, data: dict[str, Any]) -> ResearchNotes:
        paper = (data.get("fetched") or {}).get("paper")
        return cls(
            summary=data.get("summary", ""),
            key_insights=list(data.get("key_insights", [])),
            metrics=list(data.get("metrics", [])),
            limitations=list(data.get("limitations", [])),
            source_note=data.get("source_note", ""),
            sources=data.get("sources", []),
            paper=Paper.from_model(paper) if paper else None,
        )


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
    def from_model(cls, data: dict[str, Any]) -> VerificationReport:
        return cls(
            agent=data["agent"],
            kind=data["kind"],
            score=float(data["score"]),
            approved=bool(data["approved"]),
            issues=list(data.get("issues", [])),
            checks=data.get("checks", {}),
            model_judgement=bool(data.get("model_judgement")),
            model_judgement_error=data.get("model_judgement_error"),
        )


@strawberry.type(description="Why a task failed.")
class TaskError:
    code: str = strawberry.field(description="TIMEOUT, MODEL_UNAVAILABLE, INTERNAL_ERROR, ...")
    message: str


@strawberry.type(description="Tokens used by every LLM call of a task.")
class TokenUsage:
    llm_calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int


@strawberry.type(description="A generation (or verification) and its progress.")
class Task:
    id: strawberry.ID
    kind: TaskKind
    status: TaskStatus
    paper_title: str = strawberry.field(
        description="as given: a title, or an arXiv id or link (then researchNotes.paper "
        "holds the paper's record and title)"
    )
    additional_context: str
    target_audience: str
    tone: Tone
    include_technical_details: bool
    max_hashtags: int
    progress: float = strawberry.field(description="0..1, from the plan (agents done/planned)")
    current_team: str | None
    current_agent: str | None
    teams: list[TeamProgress]
    result: PostResult | None
    research_notes: ResearchNotes | None
    verification_reports: list[VerificationReport]
    revisions: int
    error: TaskError | None
    usage: TokenUsage
    approved: bool | None = strawberry.field(
        description="once COMPLETED: whether both verifiers approved the final post"
    )
    last_seq: int = strawberry.field(description="seq of the newest event (0: none yet)")
    attempt: int = strawberry.field(
        description="runs started: 1, +1 per resume after a crash, takeover or retry"
    )
    worker_id: str | None = strawberry.field(description="the worker that runs or ran it")
    owner: str = strawberry.field(
        description="the principal that created it: key:<key id>, jwt:<subject> or local"
    )

    @strawberry.field(description="1 = the next task to start; null unless PENDING")
    async def queue_position(self, info: Info) -> int | None:
        if self.status != TaskStatus.PENDING:
            return None
        shared = info.operation.operation == OperationType.QUERY
        return await info.context.queue_position(str(self.id), shared=shared)

    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_model(cls, row: TaskRow) -> Task:
        result = None
        if row.content:
            result = PostResult(
                content=row.content,
                hashtags=list(row.hashtags or []),
                word_count=len(row.content.split()),
                character_count=len(row.content),
                approved=row.approved,
                open_issues=list(row.open_issues or []),
            )
        copied = {name: getattr(row, name) for name in _COPIED_COLUMNS}
        usage = TokenUsage(**{name: getattr(row, name) for name in _USAGE_COLUMNS})
        notes = ResearchNotes.from_model(row.research_notes) if row.research_notes else None
        error = (
            TaskError(code=row.error_code or "UNKNOWN", message=row.error) if row.error else None
        )
        return cls(
            id=strawberry.ID(row.id),
            kind=TaskKind(row.kind),
            status=TaskStatus(row.status),
            tone=Tone(row.tone),
            teams=[TeamProgress.from_model(t) for t in Teams.load(row.teams)],
            result=result,
            research_notes=notes,
            verification_reports=[
                VerificationReport.from_model(r) for r in row.verification_reports or []
            ],
            error=error,
            usage=usage,
            **copied,
        )


#: `Task` row columns that `Task` shows as they are.
_COPIED_COLUMNS = (
    "owner",
    "paper_title",
    "additional_context",
    "target_audience",
    "include_technical_details",
    "max_hashtags",
    "progress",
    "current_team",
    "current_agent",
    "revisions",
    "last_seq",
    "approved",
    "attempt",
    "worker_id",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
)
_USAGE_COLUMNS = ("llm_calls", "input_tokens", "output_tokens", "total_tokens")


@strawberry.type(description="One event of a task's log (an AgentLog row).")
class TaskEvent:
    id: strawberry.ID = strawberry.field(description="<taskId>:<seq>")
    task_id: strawberry.ID
    seq: int = strawberry.field(description="1, 2, 3 ... per task, no gaps")
    timestamp: datetime
    team: str | None
    agent: str | None
    kind: EventKind
    message: str
    data: JSON
    progress: float = strawberry.field(description="the task's progress after this event")
    status: TaskStatus | None = strawberry.field(description="set on TASK_STATUS events")
    attempt: int = strawberry.field(description="the run of the task that reported it")
    is_terminal: bool = strawberry.field(description="true on the task's last event")

    @classmethod
    def from_model(cls, row: AgentLogRow) -> TaskEvent:
        status = (row.data or {}).get("status") if row.kind == "TASK_STATUS" else None
        return cls(
            id=strawberry.ID(f"{row.task_id}:{row.seq}"),
            task_id=strawberry.ID(row.task_id),
            seq=row.seq,
            timestamp=row.created_at,
            team=row.team,
            agent=row.agent,
            kind=EventKind(row.kind),
            message=row.message,
            data=row.data or {},
            progress=row.progress,
            status=TaskStatus(status) if status else None,
            attempt=row.attempt,
            is_terminal=is_terminal_event(row),
        )


@strawberry.type(description="A page of tasks, newest first.")
class TaskConnection(Connection[Task]):
    pass


@strawberry.type(description="A page of a task's events, in seq order.")
class AgentLogConnection(Connection[TaskEvent]):
    pass
