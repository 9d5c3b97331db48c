"""`Event`: one observable step of a task, as every layer passes it to the event log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from db.models import TERMINAL_STATUSES, AgentLog, EventKind, TaskStatus

#: Task columns an event may set alongside itself (large results live there, not in
#: the event's `data`).
RESULT_FIELDS = frozenset(
    {
        "research_notes",
        "content",
        "hashtags",
        "verification_reports",
        "revisions",
        "error",
        "error_code",
        "attempt",
        "worker_id",
        "approved",
        "open_issues",
    }
)
#: Longest string kept in an event's `data`; longer text lives in the task's columns.
MAX_DATA_STRING = 500
#: Longest list kept in an event's `data`.
MAX_DATA_ITEMS = 50
#: Longest `message` kept on an event.
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Event:
    """One step of a task before it is stored (the event log adds `seq` and the time).

    - `kind`: what happened; `status` is set with, and only with, TASK_STATUS.
    - `team` / `agent`: who did it (None for task-level events and the meta-supervisor's
      team).
    - `data`: small JSON (strings over `MAX_DATA_STRING` characters are cut on append).
    - `progress`: the task's progress after the step, 0..1; None keeps it.
    - `result`: task columns to store with the event (see `RESULT_FIELDS`).
    - `attempt`: the run of the task that reported it (1 first, +1 per resume).
    """

    kind: EventKind
    message: str = ""
    team: str | None = None
    agent: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    progress: float | None = None
    status: TaskStatus | None = None
    result: Mapping[str, Any] | None = None
    attempt: int = 1

    @classmethod
    def task_status(
        cls,
        status: TaskStatus,
        message: str = "",
        *,
        data: Mapping[str, Any] | None = None,
        progress: float | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> Event:
        """A TASK_STATUS event moving the task to `status`."""
        return cls(
            EventKind.TASK_STATUS,
            message or status.value.lower(),
            data=data or {},
            progress=progress,
            status=status,
            result=result,
        )

    def check(self) -> None:
        """Raise `ValueError` for a bad kind/status pair, a progress outside 0..1 or an
        unknown result field."""
        if (self.kind == EventKind.TASK_STATUS) != (self.status is not None):
            raise ValueError("status is given with, and only with, kind=TASK_STATUS")
        if self.progress is not None and not 0.0 <= self.progress <= 1.0:
            raise ValueError(f"progress must be within 0..1, got {self.progress}")
        unknown = set(self.result or {}) - RESULT_FIELDS
        if unknown:
            raise ValueError(f"unknown result fields: {sorted(unknown)}")

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
