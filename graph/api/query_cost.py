"""The cost rule: what an operation costs before it runs (`OperationCost`), each field 1
and each list field multiplying its children by its page size or an estimate, with the
list sizes of an introspection measured on the schema itself (`IntrospectionSizes`)."""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
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
)

from db.repository import MAX_CHAIN
from graph.api.pagination import MAX_PAGE_SIZE

#: Items a list field that is not a connection is assumed to hold when costing an
#: operation (teams: 2, agents per team: 2, reports: 2 per verification round).
LIST_ITEMS_ESTIMATE = 10
#: List fields that may hold more than LIST_ITEMS_ESTIMATE items, costed at their most
#: (type, field): items. `Task.history` is a revision chain (`db.repository.MAX_CHAIN`).
LIST_SIZES = {("Task", "history"): MAX_CHAIN}
#: What one read of the task queue adds to an operation's cost, once, however many
#: `queuePosition`s it asks for: they all come from that one read (a DataLoader,
#: `graph.api.context.QueuePositions`), which returns a row per queued task; costed as a
#: page of MAX_PAGE_SIZE items.
QUEUE_READ_COST = MAX_PAGE_SIZE
#: Fields whose first occurrence in an operation adds a one-off cost (type, field): cost.
ONCE_PER_OPERATION = {("Task", "queuePosition"): QUEUE_READ_COST}


class OverBudget(Exception):
    """An operation's cost went past its budget (`OperationCost` stops counting there)."""


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


class OperationCost:
    """The cost of one operation: each field costs 1; a connection field (one with a
    `first` argument) multiplies its children by `first` (capped at MAX_PAGE_SIZE; the
    argument's default when absent), a list of LIST_SIZES by its size there, another
    list field by LIST_ITEMS_ESTIMATE (the
    `edges` of a connection by 1), a list of an introspection type by its size in this
    schema (`IntrospectionSizes`); fragments count where they are spread; a field of
    ONCE_PER_OPERATION adds its one-off cost once, outside every multiplier. Stops with
    `OverBudget` past `budget`."""

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
                raise OverBudget
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
            if (parent.name, node.name.value) in LIST_SIZES:
                return LIST_SIZES[parent.name, node.name.value]
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
