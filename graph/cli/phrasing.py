"""How `postassist generate` phrases what happens: which supervisor reasons are shown
(`routing_reason`, `is_sentence`), durations, status lines, and what a working agent
waits for (`waiting_for`)."""

from __future__ import annotations

import re
from typing import Any

#: A word for `is_sentence`: letters only, with inner apostrophes or hyphens ("don't",
#: "state-of-the-art"); identifiers (`style_checker`) and numbers are not words.
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
#: Words a reason needs to be a sentence rather than a name or a fragment.
MIN_REASON_WORDS = 3
#: What a model says when it has no reason: an admission, not a reason.
_ADMISSION = re.compile(
    r"\b(not sure|unsure|no idea|(don'?t|do not) know|not certain|(need|want) (a little |"
    r"some |your )?help|what to do|(cannot|can'?t) (decide|tell))\b",
    re.IGNORECASE,
)
#: Seconds a working agent may report nothing, with no tool call or model call open,
#: before the view says it waits for the model anyway. A server reports a model call's
#: start (LLM_CALL) and end (LLM_USAGE); one older than LLM_CALL reports only the end,
#: and everything else an agent does between two events (parsing, the tools' checks,
#: which report TOOL_CALL/TOOL_RESULT) takes milliseconds.
MODEL_WAIT_AFTER = 1.0


def is_sentence(text: str) -> bool:
    """True when `text` reads as a reason: at least `MIN_REASON_WORDS` words of letters
    that make up most of it, and not an admission ("I am not sure what to do now").
    Bare names, numbers and punctuation ("style_checker", "1.2,3", "-") are not."""
    tokens = text.split()
    words = [t for t in tokens if _WORD.fullmatch(t.strip(".,;:!?()[]\"'"))]
    return (
        len(words) >= MIN_REASON_WORDS
        and 2 * len(words) > len(tokens)
        and not _ADMISSION.search(text)
    )


def routing_reason(data: dict[str, Any]) -> str:
    """The reason to show for a ROUTING event's `data`: the supervisor's own when the
    plan or a fallback wrote it, or when the model gave a sentence; otherwise the plan's
    own reason (its `situation`, from servers that send it), or what the plan makes of
    the model's choice (its default step, or one of the valid options)."""
    reason = str(data.get("reason") or "").strip()
    if data.get("source") != "model" or is_sentence(reason):
        return reason
    if situation := str(data.get("situation") or "").strip():
        return f"the plan: {situation} (the model gave no usable reason)"
    options = [str(option) for option in data.get("options") or []]
    if options and data.get("next") == options[0]:
        return "the default plan's next step (the model gave no usable reason)"
    return f"one of the valid steps ({', '.join(options)}); the model gave no usable reason"


def duration(seconds: float) -> str:
    """Elapsed time for people: "12 s", "2 min 05 s", "1 h 02 min"."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def status_line(status: str, message: str) -> str:
    """A TASK_STATUS event as one line: "task RUNNING", "task FAILED: <why>" (a message
    that only repeats the status, such as "completed" or "started", is left out)."""
    if message.strip().lower() in {status.lower(), "started", *_STATUS_WORDS}:
        return f"task {status}"
    return f"task {status}: {message}"


_STATUS_WORDS = {"queued", "pending", "running", "completed", "failed", "cancelled"}


def waiting_for(since: float, tool: str | None, model_call: str | None = None) -> str | None:
    """What a working agent waits for, `since` seconds after its last event: the tool
    call it opened ("running tool check_linkedin_style, 2 s"), the model call it sent
    ("waiting for the model, 12 s (hook sentence)"), else, after `MODEL_WAIT_AFTER` seconds,
    the model all the same ("waiting for the model, 12 s"); None when it reported
    something a moment ago."""
    if tool:
        return f"running tool {tool}, {duration(since)}"
    if model_call:
        return f"waiting for the model, {duration(since)} ({model_call})"  # time first: it wraps
    if since >= MODEL_WAIT_AFTER:
        return f"waiting for the model, {duration(since)}"
    return None
