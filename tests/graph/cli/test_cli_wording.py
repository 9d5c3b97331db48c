"""The words of `postassist generate`: which supervisor reasons are shown, plurals,
durations, status lines, what an agent waits for, the final usage lines, and the usage
line of `--help`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agents.checks.wording import counted as plural
from graph.cli.main import app
from graph.cli.output import usage_lines
from graph.cli.phrasing import (
    MODEL_WAIT_AFTER,
    duration,
    is_sentence,
    routing_reason,
    status_line,
    waiting_for,
)

#: What the slow bundled model has given as a routing reason (reported from real runs).
NOISE = [
    "-",
    "1.2,3",
    "I am not sure what to do now, I need a little help.",
    "style_checker",
    "tech_verifier, style_checker",
    "stub",
    "",
    "   ",
    "FINISH.",
    "next: linkedin_creator",
    "I don't know.",
]
SENTENCES = [
    "The draft needs a technical check before its style is reviewed.",
    "Research notes are missing, so the researcher goes first.",
    "Because style_checker has not run yet on this draft.",
    "The post is approved; nothing is left to do.",
]


@pytest.mark.parametrize("text", NOISE)
def test_noise_is_not_a_sentence(text: str) -> None:
    assert not is_sentence(text)


@pytest.mark.parametrize("text", SENTENCES)
def test_a_reason_in_words_is_a_sentence(text: str) -> None:
    assert is_sentence(text)


OPTIONS = ["tech_verifier", "style_checker"]


@pytest.mark.parametrize("reason", NOISE)
def test_a_noisy_model_reason_gives_way_to_the_plan(reason: str) -> None:
    data = {"next": "tech_verifier", "reason": reason, "source": "model", "options": OPTIONS}
    assert routing_reason(data) == "the default plan's next step (the model gave no usable reason)"
    other = {**data, "next": "style_checker"}
    assert routing_reason(other) == (
        "one of the valid steps (tech_verifier, style_checker); the model gave no usable reason"
    )


def test_a_noisy_model_reason_gives_way_to_the_plans_own_situation() -> None:
    situation = "a draft is ready; reports so far: none"
    data = {"next": "tech_verifier", "reason": ": 1.2,3", "source": "model", "options": OPTIONS}
    assert routing_reason({**data, "situation": situation}) == (
        "the plan: a draft is ready; reports so far: none (the model gave no usable reason)"
    )


def test_a_model_sentence_is_shown_as_given() -> None:
    data = {"next": "style_checker", "reason": SENTENCES[0], "source": "model"}
    assert routing_reason({**data, "options": OPTIONS}) == SENTENCES[0]


@pytest.mark.parametrize(
    "reason",
    [
        "the only valid step: a draft is ready; reports so far: style_checker, tech_verifier",
        "fallback to the plan: unparseable answer (OutputParserException)",
        "fallback to the plan: 'FINISH' is not valid now (valid: tech_verifier, style_checker)",
    ],
)
def test_reasons_the_plan_wrote_are_shown_as_they_are(reason: str) -> None:
    source = "plan" if reason.startswith("the only") else "fallback"
    data = {"next": "tech_verifier", "reason": reason, "source": source, "options": OPTIONS}
    assert routing_reason(data) == reason


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (0, "insight", "0 insights"),
        (1, "insight", "1 insight"),
        (2, "insight", "2 insights"),
        (1, "LLM call", "1 LLM call"),
        (5, "LLM call", "5 LLM calls"),
        (1, "revision", "1 revision"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_plural_with_an_irregular_plural() -> None:
    assert plural(2, "analysis", "analyses") == "2 analyses"
    assert plural(1, "analysis", "analyses") == "1 analysis"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.4, "0 s"),
        (12.9, "12 s"),
        (59, "59 s"),
        (60, "1 min 00 s"),
        (125, "2 min 05 s"),
        (3725, "1 h 02 min"),
        (-3, "0 s"),
    ],
)
def test_duration(seconds: float, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("COMPLETED", "completed", "task COMPLETED"),
        ("RUNNING", "started", "task RUNNING"),
        ("CANCELLED", "cancelled", "task CANCELLED"),
        ("PENDING", "retry requested", "task PENDING: retry requested"),
        ("FAILED", "the model is unavailable", "task FAILED: the model is unavailable"),
    ],
)
def test_status_line_says_the_status_once(status: str, message: str, expected: str) -> None:
    assert status_line(status, message) == expected


def test_what_a_working_agent_waits_for() -> None:
    assert waiting_for(0.2, None) is None  # it reported something a moment ago
    assert waiting_for(MODEL_WAIT_AFTER, None) == "waiting for the model, 1 s"
    assert waiting_for(12.3, None) == "waiting for the model, 12 s"
    # the model call the agent reported sending (LLM_CALL), from the moment it is sent
    assert waiting_for(0.2, None, "hook sentence") == "waiting for the model, 0 s (hook sentence)"
    assert waiting_for(3, "ground_draft", "post body").startswith("running tool ground_draft")
    assert waiting_for(0.1, "ground_draft") == "running tool ground_draft, 0 s"
    assert waiting_for(75, "ground_draft") == "running tool ground_draft, 1 min 15 s"


def test_usage_lines_pluralise_and_say_how_long_it_took() -> None:
    task = {
        "usage": {"llmCalls": 1, "inputTokens": 100, "outputTokens": 1},
        "revisions": 1,
        "createdAt": "2026-01-01T10:00:00+00:00",
        "completedAt": "2026-01-01T10:01:05.5+00:00",
    }
    assert usage_lines(task) == [
        "took 1 min 05 s, 1 revision",
        "1 LLM call: 100 input + 1 output token",
    ]
    task.update(usage={"llmCalls": 5, "inputTokens": 500, "outputTokens": 100}, revisions=0)
    assert usage_lines(task)[1] == "5 LLM calls: 500 input + 100 output tokens"
    assert usage_lines({**task, "completedAt": None}) == [
        "0 revisions",
        "5 LLM calls: 500 input + 100 output tokens",
    ]


def test_the_usage_line_names_the_argument_plainly() -> None:
    result = CliRunner().invoke(
        app, ["generate", "--help"], prog_name="postassist", env={"COLUMNS": "100"}
    )
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.split() == ["Usage:", "postassist", "generate", "[OPTIONS]", "PAPER_TITLE"]
    assert "{" not in usage and "paper_title" not in usage
