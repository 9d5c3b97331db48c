"""Limits checked before an operation runs: Strawberry's depth, alias and token limiters,
`QueryLengthLimiter` (characters, before parsing) and `OperationGuard` (one operation per
request unless `operationName` says which, no NUL or lone surrogate in any string
(`query_text`), subscriptions only over WebSocket or a streaming HTTP response (SSE,
multipart; `HTTP_STREAM`), introspection only where allowed and
capped per document (`query_introspection`), and a cost budget on list fields that
counts introspection too (`query_cost`)). Every number comes from `Settings`, or from
the schema itself (the list sizes an introspection is costed with).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse
from starlette.websockets import WebSocket
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from graph.api.query_cost import OperationCost, OverBudget
from graph.api.query_introspection import IntrospectionPolicy
from graph.api.query_text import invalid_strings
from graph.api.strawberry_compat import graphql_schema, provided_operation_name
from graph.errors import (
    BAD_REQUEST,
    INTERNAL_SERVER_ERROR,
    OPERATION_NAME_REQUIRED,
    LimitExceededError,
    UserInputError,
    log_errors,
)

#: The ASGI scope key the transport sets (to the protocol's name: "graphql-sse",
#: "multipart-subscription") on an HTTP request whose answer streams, so a subscription
#: may run on it (`graph.transport.router`).
HTTP_STREAM = "postassist.http_stream"


def _streams(request: Any) -> bool:
    """Whether `request` can carry a subscription: a WebSocket, or an HTTP request the
    transport answers with a stream (`HTTP_STREAM`)."""
    if isinstance(request, WebSocket):
        return True
    scope = getattr(request, "scope", None)
    return isinstance(scope, dict) and bool(scope.get(HTTP_STREAM))


def _auth_mode(context: Any) -> str | None:
    """The authentication mode of the app serving a request (None without one)."""
    auth = getattr(getattr(context, "services", None), "auth", None)
    return getattr(auth, "mode", None)


def _masked(error: GraphQLError) -> GraphQLError:
    request_id = (error.extensions or {}).get("requestId")
    extensions = {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}
    return GraphQLError("Internal server error.", extensions=extensions)


class ValidDocuments:
    """The query texts that passed validation (the rules of every extension), by digest,
    so a text sent again skips it: validating a `generatePost` mutation took ~3 ms of
    CPU per request, the biggest share of the mutation's own work, and clients send the
    same few texts again and again. Only what validation checks is skipped: the
    variables-dependent checks (`OperationGuard._check`: strings, cost) run every time.

    At most `size` digests (32 bytes each), the least recently seen dropped first; a
    text that failed validation is never kept (it is validated again each time)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._digests: OrderedDict[bytes, None] = OrderedDict()

    @staticmethod
    def digest(query: str) -> bytes:
        """BLAKE2b-256 of the query text (UTF-8, lone surrogates escaped)."""
        return hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=32).digest()

    def __contains__(self, digest: bytes) -> bool:
        if digest in self._digests:
            self._digests.move_to_end(digest)
            return True
        return False

    def add(self, digest: bytes) -> None:
        """Remember `digest` as valid, dropping the oldest beyond `size`."""
        self._digests[digest] = None
        if len(self._digests) > self.size:
            self._digests.popitem(last=False)


class OperationGuard(SchemaExtension):
    """Validates the document (the rules of every extension), then, if it is valid,
    rejects it before it runs when it has several operations and no `operationName`
    (OPERATION_NAME_REQUIRED), a string with a NUL or a lone surrogate (BAD_USER_INPUT),
    is a subscription over HTTP that does not stream (BAD_REQUEST: use WebSocket, SSE or
    multipart), asks for introspection
    that `introspection` does not allow (`IntrospectionPolicy.check`), or costs more
    than `max_cost` (GRAPHQL_VALIDATION_FAILED, `extensions.limit = "cost"`)."""

    def __init__(
        self,
        *,
        max_cost: int,
        introspection: IntrospectionPolicy | None = None,
        valid: ValidDocuments | None = None,
    ) -> None:
        self.max_cost = max_cost
        self.introspection = introspection or IntrospectionPolicy()
        self.valid = valid if valid is not None else ValidDocuments(size=0)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            schema = graphql_schema(context.schema)
            try:
                errors = self._validate(schema, document)
                context.pre_execution_errors = errors or self._check(schema, document)
            except Exception as exc:  # a bug here must not skip masking: see log_errors
                error = GraphQLError("Internal server error.", original_error=exc)
                log_errors([error])
                context.pre_execution_errors = [_masked(error)]
        yield

    def _validate(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        """The validation errors of `document` ([] at once for a text that passed before)."""
        context = self.execution_context
        digest = ValidDocuments.digest(context.query) if context.query else None
        if digest is not None and digest in self.valid:
            return []
        errors = validate_document(schema, document, context.validation_rules)
        if not errors and digest is not None:
            self.valid.add(digest)
        return list(errors)

    def _check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1 and provided_operation_name(context) is None:
            message = "the document has several operations: say which to run in operationName"
            return [GraphQLError(message, extensions={"code": OPERATION_NAME_REQUIRED})]
        for field, problem in invalid_strings(document, context.variables or {})[:1]:
            return [UserInputError(f"{field} {problem}", field=field)]
        if context.operation_type == OperationType.SUBSCRIPTION and not _streams(
            getattr(context.context, "request", None)
        ):
            message = (
                "subscriptions run over WebSocket (graphql-transport-ws or graphql-ws) or a "
                "streaming HTTP response: send Accept: text/event-stream (GraphQL over SSE) "
                'or multipart/mixed;subscriptionSpec="1.0"'
            )
            return [GraphQLError(message, extensions={"code": BAD_REQUEST})]
        if refused := self.introspection.check(document, _auth_mode(context.context)):
            return refused
        name = context.operation_name
        operation = next((o for o in operations if (o.name and o.name.value) == name), None)
        operation = operation or operations[0]
        cost = OperationCost(schema, document, context.variables or {}, self.max_cost)
        try:
            cost.operation(operation)
        except OverBudget:
            message = f"the operation costs more than {self.max_cost}; ask for fewer items"
            return [LimitExceededError(message, limit="cost", maxCost=self.max_cost)]
        return []


class QueryLengthLimiter(SchemaExtension):
    """Refuses a document longer than `max_chars` characters before it is parsed
    (GRAPHQL_VALIDATION_FAILED, `extensions.limit = "length"`). The token limit stops
    the parser after `MAX_QUERY_TOKENS` tokens, but comments and long strings are one
    token or none: graphql-core's lexer spent ~75 ms of the event loop on one 256 KiB
    comment, stalling every other client for as long.

    The refusal is a pre-execution error on a placeholder document (a one-field query
    that never runs), not an exception: strawberry's subscription path does not catch
    one raised while parsing."""

    _PLACEHOLDER = parse("{ __typename }", no_location=True)

    def __init__(self, *, max_chars: int) -> None:
        self.max_chars = max_chars

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query or ""
        if len(query) > self.max_chars and context.graphql_document is None:
            message = f"the document has {len(query)} characters; at most {self.max_chars}"
            context.graphql_document = self._PLACEHOLDER  # strawberry then parses nothing
            context.pre_execution_errors = [
                LimitExceededError(message, limit="length", maxLength=self.max_chars)
            ]
        yield


def limit_extensions(settings: Any) -> list[Callable[[], SchemaExtension]]:
    """Factories (one extension per request) of the extensions that bound an operation
    before it runs, from `settings` (`max_query_chars`, `max_query_depth`,
    `max_query_aliases`, `max_query_tokens`, `max_query_cost`, `graphql_introspection`,
    `graphql_introspection_with_auth`, `max_introspection_fields`,
    `max_introspection_depth`). `OperationGuard` comes last: it validates with the rules
    the others add, once per query text (`ValidDocuments`, shared by the requests of
    this schema). Strawberry's depth limiter skips introspection; `OperationGuard`
    measures it (`IntrospectionPolicy`)."""
    introspection = IntrospectionPolicy(
        enabled=settings.graphql_introspection,
        with_auth=settings.graphql_introspection_with_auth,
        max_fields=settings.max_introspection_fields,
        max_depth=settings.max_introspection_depth,
    )
    return [
        partial(QueryLengthLimiter, max_chars=settings.max_query_chars),
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_query_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(
            OperationGuard,
            max_cost=settings.max_query_cost,
            introspection=introspection,
            valid=ValidDocuments(),
        ),
    ]
