"""Limits checked before an operation runs: Strawberry's depth, alias and token limiters,
introspection switched off, and `OperationGuard` (one operation per request unless
`operationName` says which, no NUL or lone surrogate in any string, subscriptions only
over WebSocket, and a cost budget on list fields). Every number comes from `Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.language import ArgumentNode, ObjectFieldNode, VariableDefinitionNode, Visitor, visit
from starlette.websockets import WebSocket
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from graph.connections import MAX_PAGE_SIZE
from graph.errors import (
    BAD_REQUEST,
    INTERNAL_SERVER_ERROR,
    OPERATION_NAME_REQUIRED,
    LimitExceededError,
    UserInputError,
    log_errors,
)

#: Items a list field that is not a connection is assumed to hold when costing an
#: operation (teams: 2, agents per team: 2, reports: 2 per verification round).
LIST_ITEMS_ESTIMATE = 10


class _OverBudget(Exception):
    pass


class _Cost:
    """The cost of one operation: each field costs 1; a connection field (one with a
    `first` argument) multiplies its children by `first` (capped at MAX_PAGE_SIZE; the
    argument's default when absent), another list field by LIST_ITEMS_ESTIMATE (the
    `edges` of a connection by 1). Stops with `_OverBudget` past `budget`."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping, budget: int
    ) -> None:
        self.schema, self.variables, self.budget = schema, variables, budget
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, int] = {}

    def of(
        self, selections: SelectionSetNode | None, parent: Any, seen: frozenset = frozenset()
    ) -> int:
        """The cost of `selections` on type `parent`; `seen`: the fragments being costed."""
        total = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                total += self._field(node, parent, seen)
            elif isinstance(node, InlineFragmentNode):
                cond = node.type_condition
                inner = self._type(cond.name.value) if cond else parent
                total += self.of(node.selection_set, inner, seen)
            elif isinstance(node, FragmentSpreadNode):
                total += self._fragment(node.name.value, seen)
            if total > self.budget:
                raise _OverBudget
        return total

    def _fragment(self, name: str, seen: frozenset) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in seen:
            return 0
        if name not in self.memo:
            parent = self._type(fragment.type_condition.name.value)
            self.memo[name] = self.of(fragment.selection_set, parent, seen | {name})
        return self.memo[name]

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)

    def _field(self, node: FieldNode, parent: Any, seen: frozenset) -> int:
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(node.name.value)
        if definition is None:  # __typename, introspection
            return 1
        children = self.of(node.selection_set, get_named_type(definition.type), seen)
        return 1 + self._multiplier(node, definition, parent) * children

    def _multiplier(self, node: FieldNode, definition: Any, parent: GraphQLObjectType) -> int:
        if "first" in definition.args:
            return self._first(node, definition.args["first"].default_value)
        if is_list_type(get_nullable_type(definition.type)):
            return 1 if parent.name.endswith("Connection") else LIST_ITEMS_ESTIMATE
        return 1

    def _first(self, node: FieldNode, default: Any) -> int:
        value: Any = default
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value, MAX_PAGE_SIZE)
        return min(max(value, 1), MAX_PAGE_SIZE) if isinstance(value, int) else MAX_PAGE_SIZE


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return "contains a lone UTF-16 surrogate"
    return None


def _walk_strings(variables: Any) -> Iterator[tuple[str, str]]:
    """(field, problem) for each string (key or value) of a variables tree that is not
    valid text; iterative, so any nesting the JSON parser allowed is fine."""
    stack: list[tuple[Any, str]] = [(variables, "variables")]
    while stack:
        value, field = stack.pop()
        if isinstance(value, str):
            if problem := _bad_text(value):
                yield field, problem
        elif isinstance(value, Mapping):
            stack.extend((key, field) for key in value)
            stack.extend((item, str(key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, field) for item in value)


class _LiteralStrings(Visitor):
    """Collects (field, problem) for string literals of a document that are not valid text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def enter_string_value(self, node: StringValueNode, *args: Any) -> None:
        if problem := _bad_text(node.value):
            ancestors = args[3] if len(args) > 3 else []
            named = (ArgumentNode, ObjectFieldNode, VariableDefinitionNode)
            owner = next((a for a in reversed(ancestors) if isinstance(a, named)), None)
            name = getattr(owner, "name", None) or getattr(owner, "variable", None)
            field = getattr(getattr(name, "name", name), "value", "input")
            self.found.append((str(field), problem))


def _masked(error: GraphQLError) -> GraphQLError:
    request_id = (error.extensions or {}).get("requestId")
    extensions = {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}
    return GraphQLError("Internal server error.", extensions=extensions)


class OperationGuard(SchemaExtension):
    """Validates the document (the rules of every extension), then, if it is valid,
    rejects it before it runs when it has several operations and no `operationName`
    (OPERATION_NAME_REQUIRED), a string with a NUL or a lone surrogate (BAD_USER_INPUT),
    is a subscription over HTTP (BAD_REQUEST: use WebSocket), or costs more than
    `max_cost` (GRAPHQL_VALIDATION_FAILED, `extensions.limit = "cost"`)."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            schema = context.schema._schema
            try:
                errors = validate_document(schema, document, context.validation_rules)
                context.pre_execution_errors = errors or self._check(schema, document)
            except Exception as exc:  # a bug here must not skip masking: see log_errors
                error = GraphQLError("Internal server error.", original_error=exc)
                log_errors([error])
                context.pre_execution_errors = [_masked(error)]
        yield

    def _check(self, schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1 and context._provided_operation_name is None:
            message = "the document has several operations: say which to run in operationName"
            return [GraphQLError(message, extensions={"code": OPERATION_NAME_REQUIRED})]
        literals = _LiteralStrings()
        visit(document, literals)
        bad = [*_walk_strings(context.variables or {}), *literals.found]
        for field, problem in bad[:1]:
            return [UserInputError(f"{field} {problem}", field=field)]
        if context.operation_type == OperationType.SUBSCRIPTION and not isinstance(
            getattr(context.context, "request", None), WebSocket
        ):
            message = "subscriptions run over WebSocket only (graphql-transport-ws or graphql-ws)"
            return [GraphQLError(message, extensions={"code": BAD_REQUEST})]
        name = context.operation_name
        operation = next((o for o in operations if (o.name and o.name.value) == name), None)
        operation = operation or operations[0]
        root = schema.get_root_type(operation.operation)
        try:
            _Cost(schema, document, context.variables or {}, self.max_cost).of(
                operation.selection_set, root
            )
        except _OverBudget:
            message = f"the operation costs more than {self.max_cost}; ask for fewer items"
            return [LimitExceededError(message, limit="cost", maxCost=self.max_cost)]
        return []


def limit_extensions(settings: Any) -> list[Callable[[], SchemaExtension]]:
    """Factories (one extension per request) of the extensions that bound an operation
    before it runs, from `settings` (`max_query_depth`, `max_query_aliases`,
    `max_query_tokens`, `max_query_cost`, `graphql_introspection`). `OperationGuard`
    comes last: it validates with the rules the others add."""
    factories: list[Callable[[], SchemaExtension]] = [
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_query_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
    ]
    if not settings.graphql_introspection:
        factories.append(DisableIntrospection)
    factories.append(partial(OperationGuard, max_cost=settings.max_query_cost))
    return factories
