"""Limits checked before an operation runs: Strawberry's depth, alias and token limiters,
and `OperationGuard` (one operation per request unless `operationName` says which, no
NUL or lone surrogate in any string, subscriptions only over WebSocket, introspection
only where allowed and capped per document, and a cost budget on list fields that counts
introspection too). Every number comes from `Settings`, or from the schema itself (the
list sizes an introspection is costed with).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
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
    SchemaMetaFieldDef,
    SelectionSetNode,
    StringValueNode,
    TypeMetaFieldDef,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_list_type,
    is_object_type,
    is_union_type,
    is_wrapping_type,
    parse,
)
from graphql.language import ArgumentNode, ObjectFieldNode, VariableDefinitionNode, Visitor, visit
from starlette.websockets import WebSocket
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from graph.api.pagination import MAX_PAGE_SIZE
from graph.api.strawberry_compat import graphql_schema, provided_operation_name
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
#: The fields that open an introspection (`__typename` does not: it is one name).
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
#: What one read of the task queue adds to an operation's cost, once, however many
#: `queuePosition`s it asks for: they all come from that one read (a DataLoader,
#: `graph.api.context.QueuePositions`), which returns a row per queued task; costed as a
#: page of MAX_PAGE_SIZE items.
QUEUE_READ_COST = MAX_PAGE_SIZE
#: Fields whose first occurrence in an operation adds a one-off cost (type, field): cost.
ONCE_PER_OPERATION = {("Task", "queuePosition"): QUEUE_READ_COST}


class _OverBudget(Exception):
    pass


@dataclass(frozen=True)
class IntrospectionSizes:
    """The list sizes an introspection is costed with, measured on the schema itself:
    `lists[(type, field)]` is the mean number of items a list field of an introspection
    type holds (`__Schema.types`: every named type; `__Type.fields`: fields per named
    type, so `types { fields }` costs exactly the fields there are), rounded up, at
    least 1 (so one `__type(name: ...)` is costed as an average type: the number of
    introspection fields per document is capped apart); `wrapping` is the most
    List/NonNull wrappers any field or argument type has, so an `ofType` nested deeper
    resolves to null and costs 1."""

    lists: Mapping[tuple[str, str], int]
    wrapping: int

    @classmethod
    def of(cls, schema: GraphQLSchema) -> IntrospectionSizes:
        """The sizes of `schema` (measured once per schema object, then remembered)."""
        cached = _SIZES.get(schema)
        if cached is None:
            cached = _SIZES[schema] = cls._measure(schema)
        return cached

    @classmethod
    def _measure(cls, schema: GraphQLSchema) -> IntrospectionSizes:
        named = list(schema.type_map.values())
        outputs = [t for t in named if is_object_type(t) or is_interface_type(t)]
        fields = [f for t in outputs for f in t.fields.values()]
        inputs = [f for t in named if is_input_object_type(t) for f in t.fields.values()]
        enums = [v for t in named if is_enum_type(t) for v in t.values.values()]
        interfaces = [i for t in outputs for i in t.interfaces]
        possible = [p for t in named if is_union_type(t) for p in t.types]
        possible += [o for t in named if is_interface_type(t) for o in outputs if t in o.interfaces]
        directives = list(schema.directives)
        arguments = [a for f in fields for a in f.args.values()]
        directive_arguments = [a for d in directives for a in d.args.values()]

        def mean(items: int, over: int) -> int:
            return max(1, math.ceil(items / over)) if over else 1

        lists = {
            ("__Schema", "types"): len(named),
            ("__Schema", "directives"): max(1, len(directives)),
            ("__Type", "fields"): mean(len(fields), len(named)),
            ("__Type", "inputFields"): mean(len(inputs), len(named)),
            ("__Type", "enumValues"): mean(len(enums), len(named)),
            ("__Type", "interfaces"): mean(len(interfaces), len(named)),
            ("__Type", "possibleTypes"): mean(len(possible), len(named)),
            ("__Field", "args"): mean(len(arguments), len(fields)),
            ("__Directive", "args"): mean(len(directive_arguments), len(directives)),
            ("__Directive", "locations"): mean(
                sum(len(d.locations) for d in directives), len(directives)
            ),
        }
        typed = [*fields, *inputs, *arguments, *directive_arguments]
        return cls(lists, max((_wrappers(t.type) for t in typed), default=0))


#: `IntrospectionSizes` per schema, measured once.
_SIZES: weakref.WeakKeyDictionary[GraphQLSchema, IntrospectionSizes] = weakref.WeakKeyDictionary()


def _wrappers(type_: Any) -> int:
    """How many List/NonNull wrappers `type_` has (`[String!]!`: 3)."""
    count = 0
    while is_wrapping_type(type_):
        type_, count = type_.of_type, count + 1
    return count


class _Cost:
    """The cost of one operation: each field costs 1; a connection field (one with a
    `first` argument) multiplies its children by `first` (capped at MAX_PAGE_SIZE; the
    argument's default when absent), another list field by LIST_ITEMS_ESTIMATE (the
    `edges` of a connection by 1), a list of an introspection type by its size in this
    schema (`IntrospectionSizes`); fragments count where they are spread; a field of
    ONCE_PER_OPERATION adds its one-off cost once, outside every multiplier. Stops with
    `_OverBudget` past `budget`."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping, budget: int
    ) -> None:
        self.schema, self.variables, self.budget = schema, variables, budget
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[tuple[str, int], int] = {}
        self.sizes = IntrospectionSizes.of(schema)
        #: The one-off costs added so far (ONCE_PER_OPERATION), outside any multiplier.
        self.once: dict[tuple[str, str], int] = {}

    def operation(self, operation: OperationDefinitionNode) -> int:
        """The cost of `operation`: its fields and the one-off costs they bring."""
        root = self.schema.get_root_type(operation.operation)
        return self.of(operation.selection_set, root) + sum(self.once.values())

    def of(
        self,
        selections: SelectionSetNode | None,
        parent: Any,
        seen: frozenset = frozenset(),
        wraps: int = 0,
    ) -> int:
        """The cost of `selections` on type `parent`; `seen`: the fragments being costed;
        `wraps`: how many `ofType` steps of an introspection lead here."""
        total = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                total += self._field(node, parent, seen, wraps)
            elif isinstance(node, InlineFragmentNode):
                cond = node.type_condition
                inner = self._type(cond.name.value) if cond else parent
                total += self.of(node.selection_set, inner, seen, wraps)
            elif isinstance(node, FragmentSpreadNode):
                total += self._fragment(node.name.value, seen, wraps)
            if total + sum(self.once.values()) > self.budget:
                raise _OverBudget
        return total

    def _fragment(self, name: str, seen: frozenset, wraps: int) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in seen:
            return 0
        if (name, wraps) not in self.memo:
            parent = self._type(fragment.type_condition.name.value)
            self.memo[name, wraps] = self.of(fragment.selection_set, parent, seen | {name}, wraps)
        return self.memo[name, wraps]

    def _type(self, name: str) -> GraphQLNamedType | None:
        return self.schema.get_type(name)

    def _field(self, node: FieldNode, parent: Any, seen: frozenset, wraps: int) -> int:
        name = node.name.value
        definition = _definition(name, parent)
        if definition is None:  # __typename
            return 1
        parent_name = getattr(parent, "name", "")
        wraps = wraps + 1 if (parent_name, name) == ("__Type", "ofType") else 0
        if wraps > self.sizes.wrapping:  # no type is wrapped this deep: null
            return 1
        if (parent_name, name) in ONCE_PER_OPERATION:
            self.once[parent_name, name] = ONCE_PER_OPERATION[parent_name, name]
        children = self.of(node.selection_set, get_named_type(definition.type), seen, wraps)
        return 1 + self._multiplier(node, definition, parent) * children

    def _multiplier(self, node: FieldNode, definition: Any, parent: GraphQLObjectType) -> int:
        if "first" in definition.args:
            return self._first(node, definition.args["first"].default_value)
        if is_list_type(get_nullable_type(definition.type)):
            if parent.name.startswith("__"):
                return self.sizes.lists.get((parent.name, node.name.value), LIST_ITEMS_ESTIMATE)
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


def _definition(name: str, parent: Any) -> Any:
    """The field definition `name` has on type `parent` (`__schema` and `__type` are the
    query root's meta fields); None for `__typename`, the one field without children."""
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    return (getattr(parent, "fields", None) or {}).get(name)


def _selections(node: Any) -> Iterable[Any]:
    selection_set = getattr(node, "selection_set", None)
    return selection_set.selections if selection_set else ()


def _introspection_fields(document: DocumentNode) -> list[FieldNode]:
    """The `__schema` and `__type` fields written anywhere in `document` (operations and
    fragments). They exist on the query root only, where fragments spread more than once
    merge, so this counts every distinct one an operation can answer."""
    found: list[FieldNode] = []
    stack = [node for d in document.definitions for node in _selections(d)]
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode) and node.name.value in INTROSPECTION_FIELDS:
            found.append(node)
        stack.extend(_selections(node))
    return found


class _Depth:
    """The depth of selections with fragments expanded: the number of fields on the
    longest path (`__type(name: "Task") { fields { name } }` is 3 deep)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, int] = {}

    def of(self, node: Any, seen: frozenset = frozenset()) -> int:
        """The depth of `node` (a field counts 1 plus its deepest child)."""
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = self.fragments.get(name)
            if fragment is None or name in seen:
                return 0
            if name not in self.memo:
                self.memo[name] = self._children(fragment, seen | {name})
            return self.memo[name]
        own = 1 if isinstance(node, FieldNode) else 0
        return own + self._children(node, seen)

    def _children(self, node: Any, seen: frozenset) -> int:
        return max((self.of(child, seen) for child in _selections(node)), default=0)


@dataclass(frozen=True)
class IntrospectionPolicy:
    """Where `__schema` and `__type` are answered, and how much of them (from
    `Settings`): `enabled` (GRAPHQL_INTROSPECTION; false: nowhere), `with_auth`
    (GRAPHQL_INTROSPECTION_WITH_AUTH; false: only in local mode, not when callers
    authenticate), `max_fields` per document (MAX_INTROSPECTION_FIELDS) and `max_depth`
    of each, in fields, itself included (MAX_INTROSPECTION_DEPTH)."""

    enabled: bool = True
    with_auth: bool = False
    max_fields: int = 2
    max_depth: int = 15

    def allows(self, mode: str | None) -> bool:
        """Whether introspection is answered in authentication `mode` (`graph.security.auth`:
        local, required, disabled; None outside the app, e.g. the schema alone)."""
        return self.enabled and (mode in (None, "local") or self.with_auth)

    def check(self, document: DocumentNode, mode: str | None) -> list[GraphQLError]:
        """The refusal of `document`'s introspection (GRAPHQL_VALIDATION_FAILED,
        `extensions.limit = "introspection"` or `"depth"`), or none."""
        fields = _introspection_fields(document)
        if not fields:
            return []
        if not self.allows(mode):
            where = (
                "on this server"
                if not self.enabled
                else "outside local mode (GRAPHQL_INTROSPECTION_WITH_AUTH=true turns it on)"
            )
            message = f"introspection ({fields[0].name.value}) is off {where}"
            return [LimitExceededError(message, limit="introspection")]
        if len(fields) > self.max_fields:
            message = (
                f"the document asks for {len(fields)} __schema/__type fields; at most "
                f"{self.max_fields} are answered"
            )
            return [LimitExceededError(message, limit="introspection", max=self.max_fields)]
        depth = _Depth(document)
        deepest = max(depth.of(field) for field in fields)
        if deepest > self.max_depth:
            message = (
                f"an introspection {deepest} fields deep exceeds maximum introspection "
                f"depth {self.max_depth}"
            )
            return [LimitExceededError(message, limit="depth", maxDepth=self.max_depth)]
        return []


def _auth_mode(context: Any) -> str | None:
    """The authentication mode of the app serving a request (None without one)."""
    auth = getattr(getattr(context, "services", None), "auth", None)
    return getattr(auth, "mode", None)


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
    is a subscription over HTTP (BAD_REQUEST: use WebSocket), asks for introspection
    that `introspection` does not allow (`IntrospectionPolicy.check`), or costs more
    than `max_cost` (GRAPHQL_VALIDATION_FAILED, `extensions.limit = "cost"`)."""

    def __init__(self, *, max_cost: int, introspection: IntrospectionPolicy | None = None) -> None:
        self.max_cost = max_cost
        self.introspection = introspection or IntrospectionPolicy()

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            schema = graphql_schema(context.schema)
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
        if len(operations) > 1 and provided_operation_name(context) is None:
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
        if refused := self.introspection.check(document, _auth_mode(context.context)):
            return refused
        name = context.operation_name
        operation = next((o for o in operations if (o.name and o.name.value) == name), None)
        operation = operation or operations[0]
        try:
            _Cost(schema, document, context.variables or {}, self.max_cost).operation(operation)
        except _OverBudget:
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
    the others add. Strawberry's depth limiter skips introspection; `OperationGuard`
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
        partial(OperationGuard, max_cost=settings.max_query_cost, introspection=introspection),
    ]
