"""GraphQL errors with `extensions.code`, and masking of everything unexpected."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


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


class ConflictError(PostAssistError):
    """The object is not in a state that allows the operation (e.g. already finished)."""

    code = CONFLICT


class ServiceUnavailableError(PostAssistError):
    """A dependency (the model) is not ready."""

    code = SERVICE_UNAVAILABLE


#: Errors of a busy dependency that a client may retry, by what they say.
_BUSY = (sqlalchemy.exc.TimeoutError,)


def _is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (PostAssistError, *_BUSY))


class MaskUnexpectedErrors(MaskErrors):
    """Replace errors that are not `PostAssistError`s (bugs, driver errors) with
    "Internal server error." and `extensions.code = INTERNAL_SERVER_ERROR`, so no stack
    trace or SQL leaks; give GraphQL's own parse/validation errors
    `GRAPHQL_VALIDATION_FAILED`."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: not _is_expected(error),
            error_message="Internal server error.",
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if isinstance(error.original_error, _BUSY):
                error.message = "the database is busy; try again shortly"
                error.extensions = {"code": SERVICE_UNAVAILABLE}
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": GRAPHQL_VALIDATION_FAILED}
        return processed
