"""The enums every layer shares: a task's status and kind, an event's kind, a team's or
agent's status, a failure's code, the post's tone. Plain `StrEnum`s, stored as their
values; every layer imports them from here.
"""

from __future__ import annotations

import enum


class TaskStatus(enum.StrEnum):
    """Lifecycle of a task: PENDING -> RUNNING -> (AWAITING_REVIEW | PAUSED) -> a terminal
    state. AWAITING_REVIEW (a person decides on the post) and PAUSED (`pauseTask`) are
    not terminal: the run waits in its checkpoint, holding no worker slot."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    PAUSED = "PAUSED"
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
    TASK_QUEUED = "TASK_QUEUED"
    TASK_RESUMED = "TASK_RESUMED"
    TEAM_STARTED = "TEAM_STARTED"
    TEAM_FINISHED = "TEAM_FINISHED"
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_FINISHED = "AGENT_FINISHED"
    AGENT_ERROR = "AGENT_ERROR"
    ROUTING = "ROUTING"
    TOOL_CALL = "TOOL_CALL"
    TOOL_RESULT = "TOOL_RESULT"
    MESSAGE = "MESSAGE"
    LLM_CALL = "LLM_CALL"  # a model call was sent; its LLM_USAGE follows when it answers
    LLM_USAGE = "LLM_USAGE"
    REVIEW_DECISION = "REVIEW_DECISION"  # who decided what on a post awaiting review
    PAUSE_REQUESTED = "PAUSE_REQUESTED"  # pauseTask on a RUNNING task: it stops at a node boundary
    DRAFT_DELTA = "DRAFT_DELTA"  # live text of the post being written; never stored (db.drafts)


class Tone(enum.StrEnum):
    """The voice of the post."""

    PROFESSIONAL = "PROFESSIONAL"
    CASUAL = "CASUAL"
    ACADEMIC = "ACADEMIC"


class TaskKind(enum.StrEnum):
    """GENERATE: a post from a paper; VERIFY: checks of a given post."""

    GENERATE = "GENERATE"
    VERIFY = "VERIFY"


class WorkStatus(enum.StrEnum):
    """Status of a team or an agent within a task (the seed API's names)."""

    IDLE = "IDLE"
    WORKING = "WORKING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"


class FailureCode(enum.StrEnum):
    """`Task.error_code` of a FAILED task."""

    TIMEOUT = "TIMEOUT"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    #: The model endpoint answered with an error (5xx, 429, another 4xx) or not within
    #: the call deadline; the FAILED event's data says whether it is `retryable`.
    MODEL_ERROR = "MODEL_ERROR"
    #: Only on tasks failed before durable execution (0.1.0); a stopped process now
    #: leaves its tasks to resume instead.
    INTERRUPTED = "INTERRUPTED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    #: Nobody answered a review within REVIEW_TIMEOUT_HOURS.
    REVIEW_TIMEOUT = "REVIEW_TIMEOUT"


class ReviewMode(enum.StrEnum):
    """When a person reviews the post before the task completes: ALWAYS; ON_REJECTION,
    only when the revisions are used up and a verifier still rejects; NEVER."""

    ALWAYS = "ALWAYS"
    ON_REJECTION = "ON_REJECTION"
    NEVER = "NEVER"


class ReviewDecision(enum.StrEnum):
    """A reviewer's answer: APPROVE (the post as it stands or as edited), REVISE (another
    round with the reviewer's feedback), REJECT (the task ends CANCELLED)."""

    APPROVE = "APPROVE"
    REVISE = "REVISE"
    REJECT = "REJECT"


class OrchestrationMode(enum.StrEnum):
    """How the Verification team's agents run: one after the other, or both at once."""

    SEQUENTIAL = "SEQUENTIAL"
    PARALLEL = "PARALLEL"
