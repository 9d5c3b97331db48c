"""`Event`: one observable step of a task, as every layer passes it to the event log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from db.enums import TERMINAL_STATUSES, EventKind, FailureCode, TaskStatus
from db.models import AgentLog, Task
from db.outputs import ResearchNotes, VerificationReport

#: Longest string kept in an event's `data`; longer text lives in the task's columns.
MAX_DATA_STRING = 500
#: Longest list kept in an event's `data`.
MAX_DATA_ITEMS = 50
#: Longest `message` kept on an event.
MAX_MESSAGE = 1000


class TaskResult(BaseModel):
    """Task columns an event stores with itself (large results live there, not in the
    event's `data`): the closed list of the `Task` columns an event may set, each typed
    as the column holds it. Only the fields given are set on the task (`apply`); an
    unknown field raises `pydantic.ValidationError` (a `ValueError`) when the result is
    built. `research_notes` and `verification_reports` are stored as their JSON.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    research_notes: ResearchNotes | None = None
    content: str | None = None
    hashtags: list[str] = Field(default_factory=list)
    verification_reports: list[VerificationReport] = Field(default_factory=list)
    revisions: int = 0
    error: str | None = None
    error_code: FailureCode | None = None
    attempt: int = 0
    worker_id: str | None = None
    approved: bool | None = None
    open_issues: list[str] = Field(default_factory=list)
    workflow_id: str | None = None
    pending_answer: dict[str, Any] | None = None

    def apply(self, task: Task) -> None:
        """Set each column of `task` that this result was given, as the row stores it
        (JSON for the notes and the reports); the others stay as they are."""
        given = self.model_dump(mode="json", include=self.model_fields_set)
        for name in type(self).model_fields:  # the closed list: every one a Task column
            if name in given:
                setattr(task, name, given[name])


@dataclass(frozen=True)
class Event:
    """One step of a task before it is stored (the event log adds `seq` and the time).

    - `kind`: what happened; `status` is set with, and only with, TASK_STATUS.
    - `team` / `agent`: who did it (None for task-level events and the meta-supervisor's
      team).
    - `data`: small JSON (strings over `MAX_DATA_STRING` characters are cut on append).
    - `progress`: the task's progress after the step, 0..1; None keeps it.
    - `result`: task columns to store with the event (`TaskResult`; a mapping of
      column names is validated into one when the event is built, so an unknown name
      raises `ValueError` there).
    - `attempt`: the run of the task that reported it (1 first, +1 per resume).
    """

    kind: EventKind
    message: str = ""
    team: str | None = None
    agent: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    progress: float | None = None
    status: TaskStatus | None = None
    result: TaskResult | None = None
    attempt: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.result, Mapping):
            object.__setattr__(self, "result", TaskResult.model_validate(self.result))

    @classmethod
    def task_status(
        cls,
        status: TaskStatus,
        message: str = "",
        *,
        data: Mapping[str, Any] | None = None,
        progress: float | None = None,
        result: TaskResult | Mapping[str, Any] | None = None,
    ) -> Event:
        """A TASK_STATUS event moving the task to `status`."""
        return cls(
            EventKind.TASK_STATUS,
            message or status.value.lower(),
            data=data or {},
            progress=progress,
            status=status,
            result=result,  # type: ignore[arg-type]
        )

    def check(self) -> None:
        """Raise `ValueError` for a bad kind/status pair, a progress outside 0..1, or a
        DRAFT_DELTA (ephemeral: published by `db.drafts`, never stored)."""
        if self.kind == EventKind.DRAFT_DELTA:
            raise ValueError("DRAFT_DELTA events are never stored (db.drafts publishes them)")
        if (self.kind == EventKind.TASK_STATUS) != (self.status is not None):
            raise ValueError("status is given with, and only with, kind=TASK_STATUS")
        if self.progress is not None and not 0.0 <= self.progress <= 1.0:
            raise ValueError(f"progress must be within 0..1, got {self.progress}")

    def row(self, task_id: str, seq: int, *, progress: float) -> AgentLog:
        """The `AgentLog` row that stores this event as number `seq` of `task_id`: the
        message cut to `MAX_MESSAGE`, `data` to size (`payload`), and `progress` (the
        task's current one) when the event gives none."""
        return AgentLog(
            task_id=task_id,
            seq=seq,
            team=self.team,
            agent=self.agent,
            kind=self.kind.value,
            message=self.message[:MAX_MESSAGE],
            data=self.payload(),
            progress=progress if self.progress is None else self.progress,
            attempt=self.attempt,
        )

    def payload(self) -> dict[str, Any]:
        """`data` cut to size, with `status` added on TASK_STATUS events."""
        payload = {k: _cut(v) for k, v in self.data.items()}
        if self.status is not None:
            payload["status"] = self.status.value
        return payload

    @property
    def is_terminal(self) -> bool:
        """True when this event moves its task to COMPLETED, FAILED or CANCELLED."""
        return self.status is not None and self.status.is_terminal


def is_terminal_event(event: AgentLog) -> bool:
    """True when the stored `event` moved its task to COMPLETED, FAILED or CANCELLED."""
    # TaskStatus is a StrEnum: the stored string compares equal to its member.
    return (
        event.kind == EventKind.TASK_STATUS
        and (event.data or {}).get("status") in TERMINAL_STATUSES
    )


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_DATA_STRING:
        return value[: MAX_DATA_STRING - 1] + "…"
    if isinstance(value, Mapping):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(v) for v in value[:MAX_DATA_ITEMS]]
    return value
