"""The shape of WebSocket protocol messages: why a graphql-ws `start` or a
graphql-transport-ws `subscribe` is malformed, and why a graphql-ws `start` cannot run
as a subscription (`subscription_problem`); each answer is a message for the client."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse

from graph.errors import BAD_REQUEST, OPERATION_NAME_REQUIRED


def start_problem(message: dict[str, Any]) -> str | None:
    """Why a legacy `start` message is malformed, or None."""
    payload = message.get("payload")
    if not isinstance(message.get("id"), str):
        return "start needs a string id"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "start needs a payload with a query string"
    if not isinstance(payload.get("variables"), (dict, type(None))):
        return "variables must be an object"
    if not isinstance(payload.get("operationName"), (str, type(None))):
        return "operationName must be a string"
    return None


def subscribe_problem(message: dict[str, Any]) -> str | None:
    """Why a graphql-transport-ws `subscribe` is malformed (the protocol's
    `SubscribeMessage`: a string id; a payload with a string `query`, and `variables`
    and `extensions` objects and a string `operationName` when present), or None."""
    payload = message.get("payload")
    if not isinstance(message.get("id"), str):
        return "subscribe needs a string id"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "subscribe needs a payload with a query string"
    for key, kind, name in (
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
        ("operationName", str, "a string"),
    ):
        if not isinstance(payload.get(key), (kind, type(None))):
            return f"{key} must be {name}"
    return None


def subscription_problem(payload: dict[str, Any], max_tokens: int) -> tuple[str, str] | None:
    """Why a legacy `start` cannot run as a subscription, as (message, code), or None.

    graphql-ws starts subscriptions only (strawberry's handler raises for anything
    else): a query or a mutation is BAD_REQUEST, as is an `operationName` the document
    does not have; several operations and no `operationName` is OPERATION_NAME_REQUIRED,
    as over HTTP. A document that does not parse within `max_tokens` tokens
    (`MAX_QUERY_TOKENS`) is None: the schema answers it with its usual error."""
    try:
        document = parse(payload["query"], no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    name = payload.get("operationName")
    operation = get_operation_ast(document, name)
    if operation is None:
        if name is not None:
            return f"the document has no operation named {name[:100]!r}", BAD_REQUEST
        message = "the document must have one operation, or name one in operationName"
        return message, OPERATION_NAME_REQUIRED
    if operation.operation is not OperationType.SUBSCRIPTION:
        kind = operation.operation.value
        message = (
            f"a graphql-ws start runs a subscription, not a {kind}: send a {kind} over "
            "HTTP (POST /graphql) or graphql-transport-ws"
        )
        return message, BAD_REQUEST
    return None
