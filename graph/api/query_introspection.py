"""The introspection rule: where `__schema` and `__type` are answered, how many of them
a document may ask for and how deep (`IntrospectionPolicy`), with fragments expanded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
)

from graph.errors import LimitExceededError

#: The fields that open an introspection (`__typename` does not: it is one name).
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


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
