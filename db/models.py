"""SQLModel tables: `Task` (one generation and its snapshot) and `AgentLog` (the event log)."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC `datetime`."""
    return datetime.now(UTC)


def new_id() -> str:
    """Return a new task id: a UUID4 as 32 lowercase hex characters."""
    return uuid.uuid4().hex


class TaskStatus(enum.StrEnum):
    """Lifecycle of a task: PENDING -> RUNNING -> (AWAITING_REVIEW) -> a terminal state."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: no event follows a terminal status."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class EventKind(enum.StrEnum):
    """What an `AgentLog` row records."""

    TASK_STATUS = "TASK_STATUS"
    TEAM_STARTED = "TEAM_STARTED"
    TEAM_FINISHED = "TEAM_FINISHED"
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_ACTIVITY = "AGENT_ACTIVITY"
    AGENT_FINISHED = "AGENT_FINISHED"
    AGENT_ERROR = "AGENT_ERROR"
    ROUTING = "ROUTING"
    TOOL_CALL = "TOOL_CALL"
    TOOL_RESULT = "TOOL_RESULT"
    MESSAGE = "MESSAGE"
    LLM_USAGE = "LLM_USAGE"
    ERROR = "ERROR"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type and hands back naive values; they were stored as UTC,
    so they are tagged as UTC on the way out. Naive values on the way in are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: PostAssist stores UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Task(SQLModel, table=True):
    """One generation (or verification) request and the snapshot of its progress.

    The snapshot columns (status, progress, current team/agent, `teams`, usage) are
    only written by `db.event_log.append`, in the same transaction as the event that
    changes them, so the snapshot always equals the fold of the task's events.
    `last_seq` is the `seq` of the newest event (0 before the first).
    """

    __tablename__ = "task"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    kind: str = Field(default="GENERATE", max_length=16)
    status: str = Field(default=TaskStatus.PENDING.value, index=True, max_length=20)

    # the request (seed API's GeneratePostInput)
    paper_title: str = Field(max_length=500)
    additional_context: str = Field(default="", sa_column=Column(Text, nullable=False))
    target_audience: str = Field(default="professional", max_length=200)
    tone: str = Field(default="PROFESSIONAL", max_length=20)
    include_technical_details: bool = True
    max_hashtags: int = 10

    # the snapshot
    progress: float = 0.0
    current_team: str | None = Field(default=None, max_length=64)
    current_agent: str | None = Field(default=None, max_length=64)
    teams: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    last_seq: int = 0

    # the results
    research_notes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    content: str | None = Field(default=None, sa_column=Column(Text))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    verification_reports: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    revisions: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    error_code: str | None = Field(default=None, max_length=64)

    # token usage, summed over every LLM call of the task
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AgentLog(SQLModel, table=True):
    """One event of a task. `seq` counts 1, 2, 3 ... per task with no gaps."""

    __tablename__ = "agent_log"
    __table_args__ = (UniqueConstraint("task_id", "seq", name="uq_agent_log_task_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="task.id", index=True, max_length=32)
    seq: int
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    team: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=32)
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    progress: float = 0.0
