"""GraphQL over Server-Sent Events (the `graphql-sse` client's distinct connections
mode) as Strawberry speaks it (`strawberry.http.streaming.SSETransport`: `event: next`
and `event: complete`, a `: ping` comment every 15 s), with what resuming needs:

- each `next` event of a `taskProgress` subscription carries `id: <seq>` (an event
  without a seq, such as an ephemeral draft delta, carries no `id:` line, so the
  browser's last event id stays the last stored event's);
- a request with a `Last-Event-ID` header (what `EventSource` sends when it
  reconnects) resumes `taskProgress` after that seq (`resume_plan`: its `afterSeq`
  argument becomes the larger of the two).

Both apply to an operation whose one root field is `taskProgress` (aliased or not);
any other operation streams unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLError,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    visit,
)
from strawberry.http.streaming import SSETransport

logger = logging.getLogger(__name__)

#: The root field whose events carry their `seq` as the SSE event id.
RESUMABLE_FIELD = "taskProgress"
#: Its argument that `Last-Event-ID` sets.
AFTER_ARGUMENT = "afterSeq"
#: Key under which `PostAssistRouter.process_result` hands an event's id to
#: `EventIdSSETransport.encode_next` (removed before the payload is encoded).
EVENT_ID_KEY = "__sse_event_id"
#: The largest `Last-Event-ID` taken (GraphQL's Int is 32-bit signed).
MAX_EVENT_ID = 2**31 - 1


class EventIdSSETransport(SSETransport):
    """Strawberry's SSE transport, with an `id:` line on each `next` event whose
    response carries `EVENT_ID_KEY` (see the module)."""

    def encode_next(self, response: Any, encode_json: Any) -> str:
        """`event: next`, `id: <seq>` when the event has one, `data: <json>`."""
        event_id = response.pop(EVENT_ID_KEY, None) if isinstance(response, dict) else None
        encoded = super().encode_next(response, encode_json)
        if event_id is None:
            return encoded
        return encoded.replace("event: next\r\n", f"event: next\r\nid: {event_id}\r\n", 1)


@dataclass(frozen=True)
class ResumePlan:
    """What an SSE request runs: its `query` and `variables` (rewritten to resume after
    `Last-Event-ID`), and the response key of its `taskProgress` field (`event_key`,
    None when the operation is not a lone `taskProgress`)."""

    query: str | None
    variables: dict[str, Any] | None
    event_key: str | None


def last_event_id(headers: Mapping[str, str]) -> int | None:
    """The `Last-Event-ID` header as a seq (None when absent or empty). Raises
    HTTPException 400 when it is not an integer 0..2^31-1."""
    raw = headers.get("last-event-id", "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_EVENT_ID:
        raise HTTPException(400, f"Last-Event-ID must be an event's seq (0..{MAX_EVENT_ID})")
    return int(raw)


def resume_plan(
    query: str | None,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    resume_after: int | None,
    *,
    max_chars: int,
    max_tokens: int,
) -> ResumePlan:
    """The request as it should run (see `ResumePlan`). A document that is too long
    (over `max_chars`), does not parse within `max_tokens`, or is not a subscription
    whose one root field is `taskProgress` is returned unchanged: the schema reports
    its errors. With `resume_after` (the `Last-Event-ID`), `afterSeq` becomes
    `max(afterSeq, resume_after)`: a variable is set in `variables`, a literal or a
    missing argument is written into the document."""
    unchanged = ResumePlan(query, variables, None)
    if not query or len(query) > max_chars:
        return unchanged
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except (GraphQLError, RecursionError):
        return unchanged
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return unchanged
    selections = operations[0].selection_set.selections
    field = selections[0] if len(selections) == 1 else None
    if not isinstance(field, FieldNode) or field.name.value != RESUMABLE_FIELD:
        return unchanged
    key = field.alias.value if field.alias else field.name.value
    if resume_after is None:
        return ResumePlan(query, variables, key)
    variables = dict(variables or {})
    argument = next((a for a in field.arguments if a.name.value == AFTER_ARGUMENT), None)
    if argument is not None and isinstance(argument.value, VariableNode):
        name = argument.value.name.value
        given = variables.get(name)
        variables[name] = max(given, resume_after) if isinstance(given, int) else resume_after
        return ResumePlan(query, variables, key)
    if argument is not None and isinstance(argument.value, IntValueNode):
        resume_after = max(int(argument.value.value), resume_after)
    value = IntValueNode(value=str(resume_after))
    others = tuple(a for a in field.arguments if a.name.value != AFTER_ARGUMENT)
    arguments = (*others, ArgumentNode(name=NameNode(value=AFTER_ARGUMENT), value=value))
    return ResumePlan(print_ast(visit(document, _Replace(field, arguments))), variables, key)


class _Replace(Visitor):
    """Replaces the arguments of one field node (AST nodes are frozen: `visit` copies
    the nodes on the way to it)."""

    def __init__(self, field: FieldNode, arguments: tuple[ArgumentNode, ...]) -> None:
        super().__init__()
        self.field, self.arguments = field, arguments

    def enter_field(self, node: FieldNode, *_: Any) -> FieldNode | None:
        if node is not self.field:
            return None
        return FieldNode(
            alias=node.alias,
            name=node.name,
            arguments=self.arguments,
            directives=node.directives,
            selection_set=node.selection_set,
        )


def event_id(data: Any, event_key: str) -> int | None:
    """The seq of the event at `data[event_key]`, or None (no seq selected, a draft
    delta's null seq, an error)."""
    event = data.get(event_key) if isinstance(data, dict) else None
    seq = event.get("seq") if isinstance(event, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


__all__ = [
    "EVENT_ID_KEY",
    "EventIdSSETransport",
    "ResumePlan",
    "event_id",
    "last_event_id",
    "resume_plan",
]
