"""GraphQL errors with `extensions.code`, the classification of every error a request can
produce (a client's mistake or a bug), and masking of the unexpected ones.

Codes of client mistakes: `BAD_USER_INPUT` (a value breaks a limit or does not coerce to
its variable's type; `extensions.field` names it), `GRAPHQL_PARSE_FAILED` (the document
does not parse), `GRAPHQL_VALIDATION_FAILED` (it does not validate, or breaks a query
limit: `extensions.limit` names which), `OPERATION_NAME_REQUIRED`, `BAD_REQUEST` (HTTP
400: the body is not a GraphQL request). Anything else is a bug: it is logged with its
traceback and its request's id (`X-Request-ID`, `graph.telemetry.request_id`), and the
client sees `INTERNAL_SERVER_ERROR` with that `extensions.requestId` only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy.exc
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.telemetry.request_id import current_request_id, new_request_id

logger = logging.getLogger("graph.errors")

BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
BAD_REQUEST = "BAD_REQUEST"
UNAUTHENTICATED = "UNAUTHENTICATED"
RATE_LIMITED = "RATE_LIMITED"
#: A WebSocket `connection_init` of a principal that already holds its cap of open
#: connections (`graph.security.connection_caps.connection_cap`).
TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"


def error_entry(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """One GraphQL error as JSON: `{"message", "extensions": {"code", **extensions}}`."""
    return {"message": message, "extensions": {"code": code, **extensions}}


def error_body(message: str, code: str = BAD_REQUEST, **extensions: Any) -> dict[str, Any]:
    """A GraphQL-shaped response body with one error (`error_entry`), for answers given
    outside GraphQL execution (HTTP 400/401/403/413, refused WebSocket messages)."""
    return {"data": None, "errors": [error_entry(message, code, **extensions)]}


class PostAssistError(GraphQLError):
    """An error meant for the client: `message` plus `extensions.code` (and details)."""

    code = INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **details})


class UserInputError(PostAssistError):
    """The input breaks a documented limit; `extensions.field` names the input field."""

    code = BAD_USER_INPUT


class NotFoundError(PostAssistError):
    """No object has the given id."""

    code = NOT_FOUND


def task_not_found(task_id: object, *, field: str) -> NotFoundError:
    """NOT_FOUND for a task id naming no task the caller may see: one answer for an
    unknown id and another principal's task, so ids leak nothing; `field` names the
    argument that carried the id."""
    return NotFoundError(f"no task with id {task_id}", field=field)


class ConflictError(PostAssistError):
    """The object is not in a state that allows the operation (e.g. already finished)."""

    code = CONFLICT


class ServiceUnavailableError(PostAssistError):
    """A dependency (the model) is not ready."""

    code = SERVICE_UNAVAILABLE


class UnauthenticatedError(PostAssistError):
    """No credentials, or credentials that authenticate nobody (HTTP 401 over HTTP,
    a rejected `connection_init` over WebSocket)."""

    code = UNAUTHENTICATED


class RateLimitedError(PostAssistError):
    """The principal ran out of its mutation budget; `extensions.retryAfter` is the
    number of whole seconds until it may try again."""

    code = RATE_LIMITED


class LimitExceededError(PostAssistError):
    """The operation breaks a query limit before it runs; `extensions.limit` is one of
    length, depth, aliases, tokens, cost, introspection."""

    code = GRAPHQL_VALIDATION_FAILED


#: Errors of a busy dependency that a client may retry.
_BUSY = (sqlalchemy.exc.TimeoutError,)
#: GraphQL's "Did you mean ...?" hints, left out when field suggestions are off.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
#: Messages of strawberry's own limit rules, and the limit each one enforces.
_LIMIT_MESSAGES = (
    (re.compile(r"exceeds maximum operation depth"), "depth"),
    (re.compile(r"\d+ aliases found\. Allowed"), "aliases"),
    (re.compile(r"Document contains more than \d+ tokens"), "tokens"),
    # graphql-core's MaxIntrospectionDepthRule: `fields` (or `interfaces`, ...) nested
    # three times under an introspection.
    (re.compile(r"^Maximum introspection depth exceeded"), "depth"),
)


def is_expected(error: GraphQLError) -> bool:
    """True for errors a client caused or may retry (GraphQL's own errors, which have no
    original error, and `PostAssistError`s); False for bugs."""
    original = error.original_error
    return original is None or isinstance(original, (PostAssistError, *_BUSY))


def client_code(error: GraphQLError) -> str:
    """The `extensions.code` of an expected error (see `is_expected`)."""
    code = (error.extensions or {}).get("code")
    if code:
        return str(code)
    if isinstance(error.original_error, _BUSY):
        return SERVICE_UNAVAILABLE
    if isinstance(error, GraphQLSyntaxError) or error.message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    return GRAPHQL_VALIDATION_FAILED


def _limit_of(error: GraphQLError) -> str | None:
    for pattern, limit in _LIMIT_MESSAGES:
        if pattern.search(error.message):
            return limit
    return None


def normalise(error: GraphQLError) -> GraphQLError:
    """Give an expected error its code (and `limit` for a broken query limit) in place."""
    limit = _limit_of(error)
    code = GRAPHQL_VALIDATION_FAILED if limit else client_code(error)
    extensions = {**(error.extensions or {}), "code": code}
    if limit:
        extensions["limit"] = limit
    if isinstance(error.original_error, _BUSY):
        error.message = "the database is busy; try again shortly"
        extensions = {"code": SERVICE_UNAVAILABLE}
    error.extensions = extensions
    return error


def _where(error: GraphQLError) -> str:
    return ".".join(map(str, error.path or [])) or "-"


def _raised_at(exception: BaseException) -> tuple[str, int] | None:
    """The file and line where `exception` was raised (its traceback's last frame)."""
    tb = exception.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb is not None else None


def _times(count: int) -> str:
    return f" ({count} times in this response)" if count > 1 else ""


def log_errors(errors: list[GraphQLError]) -> None:
    """Log the errors of one result, each distinct one once: one INFO line for a client's
    mistake (its code and message), a traceback for a bug, tagged with the request's id
    (a new one outside a request) that is also put in the error's `extensions.requestId`
    (the masked error the client gets keeps it). Errors alike (a client's: the same code
    and message; a bug's: the same exception type and text raised at the same line) are
    one record that says how many there were and where the first was.
    So 5,000 aliases that hit one bug log one traceback, not 5,000."""
    mistakes: dict[tuple[str, str], int] = {}
    bugs: dict[tuple[Any, ...], list[GraphQLError]] = {}
    for error in errors:
        if is_expected(error):
            key = (client_code(error), error.message[:300])
            mistakes[key] = mistakes.get(key, 0) + 1
            continue
        original = error.original_error or error
        bugs.setdefault((type(original), str(original), _raised_at(original)), []).append(error)
    for (code, message), count in mistakes.items():
        logger.info("client error %s: %s%s", code, message, _times(count))
    for alike in bugs.values():
        request_id = current_request_id() or new_request_id()
        for error in alike:
            error.extensions = {**(error.extensions or {}), "requestId": request_id}
        first = alike[0]
        original = first.original_error or first
        logger.error(
            "unexpected error (requestId %s) at %s%s",
            request_id,
            _where(first),
            _times(len(alike)),
            exc_info=(type(original), original, original.__traceback__),
        )


class MaskUnexpectedErrors(MaskErrors):
    """Replace errors that are not expected (bugs, driver errors) with "Internal server
    error." and `extensions = {code: INTERNAL_SERVER_ERROR, requestId}`, so no stack
    trace or SQL leaks; give every expected error its code (`normalise`)."""

    def __init__(self, *, suggestions: bool = True) -> None:
        # strawberry's default `should_mask_error` sends every error through
        # `anonymise_error` (a public hook), which decides: masked, or kept with its code.
        super().__init__(error_message="Internal server error.")
        self.suggestions = suggestions

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """For an unexpected error, the masked copy: message, locations and path, the
        code and the request id. An expected one is kept, with its code (`normalise`,
        unless it already has a request id) and, when suggestions are off, without its
        "Did you mean ...?"."""
        if not is_expected(error):
            masked = super().anonymise_error(error)
            request_id = (
                (error.extensions or {}).get("requestId")
                or current_request_id()
                or new_request_id()
            )
            masked.extensions = {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}
            return masked
        if not (error.extensions or {}).get("requestId"):
            normalise(error)
        if not self.suggestions:
            error.message = _SUGGESTION.sub("", error.message)
        return error


#: How a coercion message names the bad field, most specific first.
_FIELD_PATTERNS = (
    re.compile(r"(?:required|unknown) field '(\w+)'"),
    re.compile(r"field '(\w+)' of required type"),
    re.compile(r" at [\w.\[\]]*\.(\w+)(?:\[\d+\])*:"),
    re.compile(r"Variable '\$(\w+)'"),
)


def coercion_field(message: str) -> str | None:
    """The input field (or variable) a variable-coercion message is about."""
    for pattern in _FIELD_PATTERNS:
        if match := pattern.search(message):
            return match.group(1)
    return None


def _bad_variable(error: GraphQLError) -> GraphQLError:
    """A variable-coercion error as BAD_USER_INPUT with `extensions.field`."""
    field = coercion_field(error.message)
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        extensions={"code": BAD_USER_INPUT, **({"field": field} if field else {})},
    )


class CoercingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution context whose set-up errors (variables that do not
    coerce to their types: a wrong enum value, "5" for an Int, a missing required or an
    unknown input field) are BAD_USER_INPUT with `extensions.field`, as the same mistake
    written inline is a validation error, instead of being masked as internal ones."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        """`ExecutionContext.build`, with variable errors rewritten (see the class)."""
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return [_bad_variable(e) if e.message.startswith("Variable") else e for e in built]
        return built
