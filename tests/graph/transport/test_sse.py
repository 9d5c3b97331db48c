"""`graph.transport.sse` without a server: which operations resume from `Last-Event-ID`
and how, and which events get an `id:` line (a draft delta's null seq gets none)."""

from __future__ import annotations

import json

import pytest
from cross_web import HTTPException
from graphql import parse, print_ast

from graph.transport.sse import EVENT_ID_KEY, EventIdSSETransport, event_id, last_event_id
from graph.transport.sse import resume_plan as plan_of

LIMITS = {"max_chars": 32_768, "max_tokens": 2000}


def plan(
    query: str, variables: dict | None = None, resume: int | None = 7, name: str | None = None
):
    return plan_of(query, variables, name, resume, **LIMITS)


def test_a_variable_after_seq_becomes_the_larger_of_it_and_last_event_id() -> None:
    query = "subscription($id: ID!, $a: Int!) { taskProgress(taskId: $id, afterSeq: $a) { seq } }"
    assert plan(query, {"id": "t", "a": 3}).variables == {"id": "t", "a": 7}
    assert plan(query, {"id": "t", "a": 9}).variables == {"id": "t", "a": 9}
    assert plan(query, {"id": "t", "a": 3}).query == query  # the text is untouched


def test_a_literal_or_missing_after_seq_is_written_into_the_document() -> None:
    literal = plan('subscription { p: taskProgress(taskId: "t", afterSeq: 2) { seq } }')
    missing = plan('subscription { taskProgress(taskId: "t") { seq } }')
    assert literal.event_key == "p" and missing.event_key == "taskProgress"
    expected = print_ast(
        parse('subscription { p: taskProgress(taskId: "t", afterSeq: 7) { seq } }')
    )
    assert literal.query == expected
    assert "afterSeq: 7" in (missing.query or "")


@pytest.mark.parametrize(
    "query",
    [
        "subscription { taskUpdates { id } }",
        'subscription { taskProgress(taskId: "t") { seq } taskUpdates { id } }',
        'subscription { ...F } fragment F on Subscription { taskProgress(taskId: "t") { seq } }',
        '{ task(id: "t") { id } }',
        "subscription { taskProgress(",  # does not parse: the schema says why
    ],
)
def test_other_operations_run_unchanged_and_get_no_ids(query: str) -> None:
    found = plan(query, {"a": 1})
    assert (found.query, found.variables, found.event_key) == (query, {"a": 1}, None)


def test_the_named_operation_is_the_one_resumed() -> None:
    query = (
        'subscription A { taskUpdates { id } } subscription B { taskProgress(taskId: "t") { seq } }'
    )
    assert plan(query, name="A").event_key is None
    assert plan(query, name="B").event_key == "taskProgress"


def test_last_event_id_is_a_seq_or_refused() -> None:
    assert last_event_id({}) is None and last_event_id({"last-event-id": " "}) is None
    assert last_event_id({"last-event-id": "42"}) == 42
    for bad in ("-1", "4.2", "x", "²", str(2**31)):
        with pytest.raises(HTTPException) as refused:
            last_event_id({"last-event-id": bad})
        assert refused.value.status_code == 400


def test_an_event_with_a_seq_gets_an_id_line_and_a_draft_delta_none() -> None:
    transport = EventIdSSETransport()
    stored = {"data": {"taskProgress": {"seq": 5, "kind": "TOOL_CALL"}}}
    draft = {"data": {"taskProgress": {"seq": None, "kind": "DRAFT_DELTA"}}}
    assert event_id(stored["data"], "taskProgress") == 5
    assert event_id(draft["data"], "taskProgress") is None
    assert event_id(None, "taskProgress") is None  # an error's null data
    encoded = transport.encode_next({**stored, EVENT_ID_KEY: 5}, json.dumps)
    assert encoded == f"event: next\r\nid: 5\r\ndata: {json.dumps(stored)}\r\n\r\n"
    assert transport.encode_next(draft, json.dumps).startswith("event: next\r\ndata: ")
