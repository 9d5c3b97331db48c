"""The text rule: no string of an operation, in its document or its variables, may hold
a NUL character or a lone UTF-16 surrogate (`invalid_strings`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import DocumentNode, StringValueNode
from graphql.language import ArgumentNode, ObjectFieldNode, VariableDefinitionNode, Visitor, visit


def invalid_strings(document: DocumentNode, variables: Any) -> list[tuple[str, str]]:
    """(field, problem) for each string of `variables` (keys and values) and each string
    literal of `document` that is not valid text, variables first; [] when all are."""
    literals = _LiteralStrings()
    visit(document, literals)
    return [*_walk_strings(variables), *literals.found]


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
