"""GraphQL types of a task and its events, separate from the tables; each built with
`from_model`. The agents' outputs (the post, research notes, reports) are in
`graph.api.outputs`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from graphql import OperationType
from strawberry.scalars import JSON

from agents.teams.state import CONTENT_TEAM, DISPLAY_NAMES, LINKEDIN_CREATOR
from db import enums
from db.drafts import DraftDelta
from db.events import is_terminal_event
from db.models import AgentLog as AgentLogRow
from db.models import Task as TaskRow
from db.snapshot import AgentSnapshot, Teams, TeamSnapshot, UsageSnapshot
from graph.api.context import Info
from graph.api.outputs import PostResult, ResearchNotes, VerificationReport
from graph.api.pagination import Connection

TaskStatus = strawberry.enum(enums.TaskStatus, description="Lifecycle of a task.")
Tone = strawberry.enum(enums.Tone, description="The voice of the post.")
WorkStatus = strawberry.enum(
    enums.WorkStatus, description="Status of a team or an agent within a task."
)
EventKind = strawberry.enum(enums.EventKind, description="What a task event records.")
TaskKind = strawberry.enum(
    enums.TaskKind,
    description="GENERATE: a post from a paper; VERIFY: checks of a given post.",
)
ReviewMode = strawberry.enum(
    enums.ReviewMode,
    description="When a person reviews the post before the task completes: ALWAYS; "
    "ON_REJECTION (the revisions are used up and a verifier still rejects); NEVER.",
)
ReviewDecision = strawberry.enum(
    enums.ReviewDecision,
    description="APPROVE the post (as it stands or edited), REVISE it with feedback, "
    "or REJECT it (the task ends CANCELLED).",
)
OrchestrationMode = strawberry.enum(
    enums.OrchestrationMode,
    description="SEQUENTIAL: the verifiers run one after the other; PARALLEL: at once.",
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
    usage: TokenUsage = strawberry.field(
        description="the agent's own LLM calls (its team's supervisor's are on the team)"
    )

    @classmethod
    def from_model(cls, agent: AgentSnapshot) -> AgentProgress:
        """The agent's entry of a task's `teams` snapshot."""
        return cls(
            **_progress(agent),
            current_activity=agent.activity,
            last_update=agent.updated_at,
            error=agent.error,
            usage=TokenUsage.from_model(agent.usage),
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
    usage: TokenUsage = strawberry.field(
        description="the LLM calls of the team's agents and of its supervisor: the sum of "
        "agents[].usage plus the supervisor's calls (the meta-supervisor's count only on "
        "Task.usage)"
    )

    @classmethod
    def from_model(cls, team: TeamSnapshot) -> TeamProgress:
        """The team's entry of a task's `teams` snapshot, with its agents."""
        return cls(
            **_progress(team),
            started_at=team.started_at,
            completed_at=team.completed_at,
            agents=[AgentProgress.from_model(a) for a in team.agents],
            usage=TokenUsage.from_model(team.usage),
        )


def _progress(entry: AgentSnapshot | TeamSnapshot) -> dict[str, Any]:
    """What an agent's and a team's progress share: name, display name, status, progress."""
    return {
        "name": entry.name,
        "display_name": DISPLAY_NAMES.get(entry.name, entry.name),
        "status": entry.status,
        "progress": entry.progress,
    }


@strawberry.type(description="Why a task failed.")
class TaskError:
    code: str = strawberry.field(description="TIMEOUT, MODEL_UNAVAILABLE, INTERNAL_ERROR, ...")
    message: str


@strawberry.type(
    description="Tokens used, and what they cost, by some LLM calls of a task: all of them "
    "(Task.usage), a team's (its agents' and its supervisor's) or one agent's."
)
class TokenUsage:
    llm_calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None = strawberry.field(
        description="USD, each call priced when it answered (LLM_PRICE_INPUT_PER_MTOK, "
        "LLM_PRICE_OUTPUT_PER_MTOK); 0 on the bundled local model; null when a call had "
        "no price (no price table set for an OpenAI-compatible provider)"
    )

    @classmethod
    def from_model(cls, usage: UsageSnapshot | TaskRow) -> TokenUsage:
        """The usage of a team's or an agent's snapshot, or of a whole task (its row's
        usage columns)."""
        return cls(**{name: getattr(usage, name) for name in _USAGE_COLUMNS})


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
    review: ReviewMode
    orchestration_mode: OrchestrationMode
    parent_id: strawberry.ID | None = strawberry.field(
        description="the task this one revises (revisePost); null for a first post"
    )
    revision_of: strawberry.ID | None = strawberry.field(
        description="the first task of the revision chain; null for a first post"
    )
    batch_id: strawberry.ID | None = strawberry.field(
        description="the batch generatePosts created it in; null otherwise"
    )
    pause_requested: bool = strawberry.field(
        description="pauseTask asked this RUNNING task to stop at its next node boundary"
    )
    progress: float = strawberry.field(description="0..1, from the plan (agents done/planned)")
    current_team: str | None
    current_agent: str | None
    teams: list[TeamProgress]
    result: PostResult | None
    research_notes: ResearchNotes | None
    verification_reports: list[VerificationReport]
    revisions: int
    error: TaskError | None
    usage: TokenUsage = strawberry.field(
        description="every LLM call of the task: its teams' (teams[].usage) and the "
        "meta-supervisor's, which belong to no team"
    )
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
    callback_url: str | None = strawberry.field(
        description="where its lifecycle webhooks go (GeneratePostInput.callbackUrl)"
    )
    secret: strawberry.Private[str | None] = None

    @strawberry.field(
        description="whsec_...: verifies the signature of the callbackUrl's deliveries; "
        "shown to the task's owner only (null for anyone else, and without a callbackUrl)"
    )
    def callback_secret(self, info: Info) -> str | None:
        return self.secret if info.context.principal.id == self.owner else None

    @strawberry.field(description="1 = the next task to start; null unless PENDING")
    async def queue_position(self, info: Info) -> int | None:
        if self.status != TaskStatus.PENDING:
            return None
        shared = info.operation.operation == OperationType.QUERY
        return await info.context.queue_position(str(self.id), shared=shared)

    @strawberry.field(
        description="The revision chain this post belongs to, oldest first: the first post "
        "and every follow-up revision of it (revisePost) the caller may see."
    )
    async def history(self, info: Info) -> list[Task]:
        rows = await info.context.services.tasks.history(
            str(self.id), viewer=info.context.principal
        )
        return [Task.from_model(r) for r in rows]

    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_model(cls, row: TaskRow) -> Task:
        """The task `row` with its snapshot and results (its JSON columns validated
        into `db.outputs` models; raises `pydantic.ValidationError` for a row whose
        JSON is not theirs)."""
        copied = {name: getattr(row, name) for name in _COPIED_COLUMNS}
        usage = TokenUsage.from_model(row)
        error = (
            TaskError(code=row.error_code or "UNKNOWN", message=row.error) if row.error else None
        )
        return cls(
            id=strawberry.ID(row.id),
            kind=TaskKind(row.kind),
            status=TaskStatus(row.status),
            tone=Tone(row.tone),
            review=ReviewMode(row.review),
            orchestration_mode=OrchestrationMode(row.orchestration_mode),
            parent_id=_id(row.parent_id),
            revision_of=_id(row.revision_of),
            batch_id=_id(row.batch_id),
            teams=[TeamProgress.from_model(t) for t in Teams.load(row.teams)],
            result=PostResult.of_task(row),
            research_notes=ResearchNotes.of_task(row),
            verification_reports=VerificationReport.of_task(row),
            error=error,
            usage=usage,
            secret=row.callback_secret,
            **copied,
        )


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


#: `Task` row columns that `Task` shows as they are.
_COPIED_COLUMNS = (
    "owner",
    "callback_url",
    "paper_title",
    "additional_context",
    "target_audience",
    "include_technical_details",
    "max_hashtags",
    "pause_requested",
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
_USAGE_COLUMNS = ("llm_calls", "input_tokens", "output_tokens", "total_tokens", "cost_usd")


@strawberry.type(description="One event of a task's log (an AgentLog row).")
class TaskEvent:
    id: strawberry.ID = strawberry.field(
        description="<taskId>:<seq>; a DRAFT_DELTA's: <taskId>:draft:<attempt>:<draft>:<index>"
    )
    task_id: strawberry.ID
    seq: int | None = strawberry.field(
        description="1, 2, 3 ... per task, no gaps; null only on DRAFT_DELTA events (never "
        "stored, taskProgress(includeDrafts: true) only)"
    )
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

    @classmethod
    def from_delta(cls, delta: DraftDelta) -> TaskEvent:
        """A DRAFT_DELTA event: LinkedInCreator's new text of draft `delta.draft` (data
        `{"text", "draft", "index", "replace"}`; `replace`: the text starts the draft
        afresh), id `<task id>:draft:<attempt>:<draft>:<index>` (a retried or resumed run
        writes its draft again from index 0: the attempt keeps the ids apart)."""
        return cls(
            id=strawberry.ID(f"{delta.task_id}:draft:{delta.attempt}:{delta.draft}:{delta.index}"),
            task_id=strawberry.ID(delta.task_id),
            seq=None,
            timestamp=datetime.fromtimestamp(delta.at, UTC),
            team=CONTENT_TEAM,
            agent=LINKEDIN_CREATOR,
            kind=EventKind.DRAFT_DELTA,
            message="",
            data={
                "text": delta.text,
                "draft": delta.draft,
                "index": delta.index,
                "replace": delta.replace,
            },
            progress=delta.progress,
            status=None,
            attempt=delta.attempt,
            is_terminal=False,
        )


@strawberry.type(description="A page of tasks, newest first.")
class TaskConnection(Connection[Task]):
    pass


@strawberry.type(description="A page of a task's events, in seq order.")
class AgentLogConnection(Connection[TaskEvent]):
    pass
