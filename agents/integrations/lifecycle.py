"""Lifecycle events: what a task's creation and status changes are called outside the
service, and what they carry. Webhooks (`webhooks`) and broker messages (CloudEvents)
share both: the name (`task.completed`; a CloudEvent's type is `dev.postassist.` plus
it) and the payload (`payload`), camelCase like the GraphQL API."""

from __future__ import annotations

import enum
from typing import Any

from db.enums import EventKind, TaskStatus
from db.models import AgentLog, Task

#: A CloudEvent's `type` is this plus the event name (`dev.postassist.task.completed`):
#: reverse-DNS, as the CloudEvents spec recommends.
CLOUDEVENT_TYPE_PREFIX = "dev.postassist."


class LifecycleEvent(enum.StrEnum):
    """A task's lifecycle event, by the status it entered (TASK_QUEUED for a new task
    and for a retry, which is queued again)."""

    TASK_QUEUED = "task.queued"
    TASK_RUNNING = "task.running"
    TASK_PAUSED = "task.paused"
    AWAITING_REVIEW = "task.awaiting_review"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_CANCELLED = "task.cancelled"

    @property
    def cloudevent_type(self) -> str:
        """`dev.postassist.task.completed` and so on."""
        return CLOUDEVENT_TYPE_PREFIX + self.value


_BY_STATUS = {
    TaskStatus.PENDING: LifecycleEvent.TASK_QUEUED,
    TaskStatus.RUNNING: LifecycleEvent.TASK_RUNNING,
    TaskStatus.PAUSED: LifecycleEvent.TASK_PAUSED,
    TaskStatus.AWAITING_REVIEW: LifecycleEvent.AWAITING_REVIEW,
    TaskStatus.COMPLETED: LifecycleEvent.TASK_COMPLETED,
    TaskStatus.FAILED: LifecycleEvent.TASK_FAILED,
    TaskStatus.CANCELLED: LifecycleEvent.TASK_CANCELLED,
}

#: What a webhook gets when it names no events (and what a task's `callbackUrl` gets):
#: the moments someone waits for, not every step of a run.
DEFAULT_EVENTS = (
    LifecycleEvent.AWAITING_REVIEW,
    LifecycleEvent.TASK_COMPLETED,
    LifecycleEvent.TASK_FAILED,
    LifecycleEvent.TASK_CANCELLED,
)


def lifecycle_event(row: AgentLog) -> LifecycleEvent | None:
    """The lifecycle event a stored row is (TASK_QUEUED, TASK_STATUS), or None."""
    if row.kind == EventKind.TASK_QUEUED:
        return LifecycleEvent.TASK_QUEUED
    if row.kind == EventKind.TASK_STATUS:
        return _BY_STATUS.get(TaskStatus(row.data["status"]))
    return None


def payload(task: Task, row: AgentLog) -> dict[str, Any]:
    """What a lifecycle event says about `task` as it is after `row` (a JSON object,
    camelCase): `taskId`, `seq`, `status`, `kind`, `paperTitle`, `occurredAt` (ISO
    8601, UTC), the links (`parentId`, `revisionOf`, `batchId`), and once there is a
    post `post` (`{"content", "hashtags"}`, else None), `approved` and `openIssues`;
    `revisions`; on failure `error` and `errorCode`; and `usage` (`llmCalls`,
    `inputTokens`, `outputTokens`, `totalTokens`, `costUsd`: None when the model's
    price is unknown)."""
    status = TaskStatus.PENDING if row.kind == EventKind.TASK_QUEUED else row.data["status"]
    post = None
    if task.content and status in (TaskStatus.COMPLETED, TaskStatus.AWAITING_REVIEW):
        post = {"content": task.content, "hashtags": list(task.hashtags)}
    return {
        "taskId": task.id,
        "seq": row.seq,
        "status": str(status),
        "kind": str(task.kind),
        "paperTitle": task.paper_title,
        "occurredAt": row.created_at.isoformat(),
        "parentId": task.parent_id,
        "revisionOf": task.revision_of,
        "batchId": task.batch_id,
        "post": post,
        "approved": task.approved,
        "openIssues": list(task.open_issues),
        "revisions": task.revisions,
        "error": task.error,
        "errorCode": str(task.error_code) if task.error_code else None,
        "usage": {
            "llmCalls": task.llm_calls,
            "inputTokens": task.input_tokens,
            "outputTokens": task.output_tokens,
            "totalTokens": task.total_tokens,
            "costUsd": task.cost_usd,
        },
    }


__all__ = [
    "CLOUDEVENT_TYPE_PREFIX",
    "DEFAULT_EVENTS",
    "LifecycleEvent",
    "lifecycle_event",
    "payload",
]
