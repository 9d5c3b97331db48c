"""SQLModel tables (their enums are `db.enums`'s).

`PostRequestBase` declares the request's fields and limits once: the `Task` table and
the validated `PostRequest` both inherit it (full-stack-fastapi-template's `ItemBase`).
`Task` holds one generation and its snapshot; `AgentLog` is the event log.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from db.enums import FailureCode, OrchestrationMode, ReviewMode, TaskKind, TaskStatus, Tone


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC `datetime`."""
    return datetime.now(UTC)


#: Longest API key name, in characters.
KEY_NAME_MAX = 200
#: The owner of tasks created in local mode (no authentication), and of every task
#: created before principals existed (migration 0004).
LOCAL_OWNER = "local"


def new_id() -> str:
    """Return a new task id: a UUID4 as 32 lowercase hex characters."""
    return uuid.uuid4().hex


def http_url(value: str) -> str:
    """`value` stripped, if it is an absolute http:// or https:// URL with a host and
    at most `URL_MAX` characters; else `ValueError` saying which. (A webhook's or a
    task's callback URL; whether its address is public is checked where it is
    submitted, `agents.integrations.addresses`.)"""
    text = value.strip()
    if len(text) > URL_MAX:
        raise ValueError(f"a URL has at most {URL_MAX} characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return text


#: Request limits, from the seed API's GeneratePostInput. The context and post limits
#: are ours, sized so a prompt fits the local model's 4096-token window.
TITLE_MIN, TITLE_MAX = 5, 500
CONTEXT_MAX = 10_000
AUDIENCE_MIN, AUDIENCE_MAX = 1, 200
HASHTAGS_MIN, HASHTAGS_MAX = 1, 20
POST_MIN, POST_MAX = 1, 10_000
#: Longest webhook or callback URL, in characters (the common browser limit).
URL_MAX = 2000


class PostRequestBase(SQLModel):
    """What the user asks for: the fields and their limits, declared once.

    Leading and trailing white space of the title, context and audience is dropped
    before the limits apply.
    """

    paper_title: str = Field(min_length=TITLE_MIN, max_length=TITLE_MAX)
    additional_context: str = Field(default="", max_length=CONTEXT_MAX, sa_type=Text)
    target_audience: str = Field(
        default="professional", min_length=AUDIENCE_MIN, max_length=AUDIENCE_MAX
    )
    tone: Tone = Field(default=Tone.PROFESSIONAL, sa_type=String(20))
    include_technical_details: bool = True
    max_hashtags: int = Field(default=10, ge=HASHTAGS_MIN, le=HASHTAGS_MAX)
    review: ReviewMode = Field(default=ReviewMode.NEVER, sa_type=String(16))
    orchestration_mode: OrchestrationMode = Field(
        default=OrchestrationMode.SEQUENTIAL, sa_type=String(16)
    )
    callback_url: str | None = Field(default=None, max_length=URL_MAX, sa_type=Text)

    @field_validator("paper_title", "additional_context", "target_audience", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL with a host (whether its address may be called is
        checked where it is submitted: that needs a DNS lookup)."""
        return None if value is None else http_url(value)


class PostRequest(PostRequestBase):
    """A validated request. Build it with `PostRequest.model_validate(data)` (a dict or,
    with `from_attributes=True`, a `Task`); raises `pydantic.ValidationError` naming
    each field that breaks a limit."""


class VerifyRequest(PostRequest):
    """A post to check with the Verification team alone, and what it must agree with."""

    content: str = Field(min_length=POST_MIN, max_length=POST_MAX)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the post is empty")
        return value


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


class Task(PostRequestBase, table=True):
    """One generation (or verification) request and the snapshot of its progress.

    The snapshot columns (status, progress, current team/agent, `teams`, usage) are
    only written by `db.event_log.append`, in the same transaction as the event that
    changes them, so the snapshot always equals the fold of the task's events.
    `teams` is a `db.snapshot.Teams` as JSON. `last_seq` is the `seq` of the newest
    event (0 before the first). `attempt` counts the runs that started (1 for the
    first, +1 for each resume after a crash, takeover or retry); `worker_id` names the
    worker that runs, or last ran, the task. `approved` tells, once the task completed,
    whether both verifiers approved the final post; `open_issues` lists what the
    rejecting reports still found (None / empty before). `owner` is the id of the
    principal that created the task (`graph.security.principals.Principal.id`); only it,
    and admins, can see the task.

    `parent_id` is the task this one revises (`revisePost`) and `revision_of` the first
    task of that chain (both None for a first post); `batch_id` groups the tasks one
    `generatePosts` created. `workflow_id` is the DBOS workflow that runs, or last ran,
    the task (the task id for the first run; a retry, resume or review decision starts
    another). `pause_requested` is set by `pauseTask` on a RUNNING task until it stops.
    `pending_answer` is what the next run continues with until it stops for a person
    again or ends: a review's REVISE (`{"decision", "feedback", "reviewer", "revision"}`)
    or a follow-up revision's feedback (`{"kind": "revise", "feedback"}`); it lives on
    the row, not in a workflow's input, so a pause, a retry or a crash in between keeps it.
    `callback_url` is where the task's own webhooks go (`GeneratePostInput.callbackUrl`),
    signed with `callback_secret` (`whsec_...`, made with the task; owner-only).
    """

    __tablename__ = "task"
    # A page of `tasks(status:)` and of a non-admin's tasks, newest first, is a walk of
    # one of these in page order (not a sort of every match: 18,000 COMPLETED tasks of
    # 20,000 took 115 ms a page on SQLite, benchmarks/reads.py).
    __table_args__ = (
        Index("ix_task_status_created_at_id", "status", "created_at", "id"),
        Index("ix_task_owner_created_at_id", "owner", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner: str = Field(default=LOCAL_OWNER, index=True, max_length=255)
    kind: TaskKind = Field(default=TaskKind.GENERATE, sa_type=String(16))
    status: TaskStatus = Field(default=TaskStatus.PENDING, index=True, sa_type=String(20))

    # the snapshot
    progress: float = 0.0
    current_team: str | None = Field(default=None, max_length=64)
    current_agent: str | None = Field(default=None, max_length=64)
    teams: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    last_seq: int = 0
    attempt: int = 0
    worker_id: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=100)
    pause_requested: bool = False
    pending_answer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    callback_secret: str | None = Field(default=None, max_length=100)

    # links to other tasks
    parent_id: str | None = Field(default=None, index=True, max_length=32)
    revision_of: str | None = Field(default=None, index=True, max_length=32)
    batch_id: str | None = Field(default=None, index=True, max_length=32)

    # the results
    research_notes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    content: str | None = Field(default=None, sa_column=Column(Text))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    verification_reports: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    revisions: int = 0
    approved: bool | None = Field(default=None, index=True)
    open_issues: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    error_code: FailureCode | None = Field(default=None, sa_type=String(64))

    # token usage, summed over every LLM call of the task (`db.snapshot` folds it); cost
    # in USD as each call was priced, None once a call had no price (unknown)
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0

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
    attempt: int = 1


class Worker(SQLModel, table=True):
    """A live worker process and its last heartbeat (for taking over a dead one's tasks).

    A worker whose `heartbeat_at` is older than `WORKER_DEAD_AFTER_SECONDS` is dead: the
    first other worker to delete its row (`db.workers.claim_dead`) resumes its tasks.
    """

    __tablename__ = "worker"

    id: str = Field(primary_key=True, max_length=200)
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    heartbeat_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ApiKey(SQLModel, table=True):
    """An API key: a principal that sends `Authorization: Bearer <token>`.

    The token (`pa_<id>_<secret>`, 43 random URL-safe characters of secret) is shown
    once, when the key is created; only its SHA-256 (`secret_hash`, 64 hex characters)
    is stored. A high-entropy random token needs no slow password hash: nobody can
    guess a preimage of its SHA-256. A revoked key (`revoked_at` set) authenticates
    nobody; its row stays, so `postassist keys list` still shows who owned which tasks.
    """

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=KEY_NAME_MAX)
    secret_hash: str = Field(max_length=64, unique=True)
    admin: bool = False
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class NodeCacheEntry(SQLModel, table=True):
    """One entry of LangGraph's node cache (`agents.runtime.node_cache.DatabaseCache`): the
    writes of a cached node run, serialised by LangGraph's serializer (`encoding`,
    `value`), under `namespace` (the node's cache namespace as a JSON list) and `key`
    (LangGraph's hash of the node's cache key). An entry past `expires_at` is a miss and is
    deleted when next read; `expires_at` None never expires.
    """

    __tablename__ = "node_cache"

    namespace: str = Field(primary_key=True, max_length=500)
    key: str = Field(primary_key=True, max_length=128)
    encoding: str = Field(max_length=32)
    value: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))


#: Longest idempotency key, in characters (`IdempotencyKey.key`).
IDEMPOTENCY_KEY_MAX = 255


class IdempotencyKey(SQLModel, table=True):
    """A submission's idempotency key (`generatePost(idempotencyKey:)`) and what it created.

    One row per (`owner`, `key`): the principal's id and the key it sent (1 to
    `IDEMPOTENCY_KEY_MAX` printable characters). `fingerprint` is the SHA-256 (64 hex
    characters) of the submission as validated (`agents.runtime.idempotency.fingerprint`);
    `task_ids` the tasks it created, in input order (one for `generatePost`, 1-5 for
    `generatePosts`, whose `batch_id` is set). The row is written in the transaction that
    stores those tasks, so neither exists without the other; the primary key decides
    between two concurrent submissions of one key. A row past `expires_at`
    (`IDEMPOTENCY_TTL_HOURS` after `created_at`) no longer counts and is deleted lazily.
    """

    __tablename__ = "idempotency_key"

    owner: str = Field(primary_key=True, max_length=255)
    key: str = Field(primary_key=True, max_length=IDEMPOTENCY_KEY_MAX)
    fingerprint: str = Field(max_length=64)
    task_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    batch_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
