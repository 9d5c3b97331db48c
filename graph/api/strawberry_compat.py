"""The one place that touches Strawberry's internals: what the schema and the query
limits need of Strawberry that it has no public API for.

- `graphql_schema`: the graphql-core schema a `strawberry.Schema` built;
- `provided_operation_name`: the `operationName` a request sent, as sent;
- `null_is_one_of_on_wrappers`: a fix of the `__Type.isOneOf` resolver Strawberry
  installs.

Each relies on how Strawberry works inside, so the installed version is checked at
import: an upgrade that changes them fails here with a message, not with every request
failing validation or an introspection crashing.
"""

from __future__ import annotations

from typing import Any

from db.compat import require_verified

#: The Strawberry releases whose internals this module was written against (PEP 440).
SUPPORTED = "==0.341.*"

require_verified(
    "strawberry-graphql",
    SUPPORTED,
    seam="graph/api/strawberry_compat.py",
    check="strawberry.Schema._schema, ExecutionContext._provided_operation_name and the "
    "isOneOf resolver of Schema._extend_introspection",
)

import strawberry  # noqa: E402
from graphql import GraphQLResolveInfo, GraphQLSchema, is_wrapping_type  # noqa: E402
from strawberry.types import ExecutionContext  # noqa: E402


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core `GraphQLSchema` that `schema` built and runs operations on.

    Why private: `OperationGuard` validates a document itself, against the schema
    Strawberry executes (Strawberry's own validation step reads the same
    `Schema._schema`), and walks its types to cost an operation; Strawberry 0.341 has
    no public accessor for it. Public replacement: such an accessor, when Strawberry
    has one (rebuilding one from the SDL would be a second schema, without the
    resolvers' extensions)."""
    return schema._schema


def provided_operation_name(context: ExecutionContext) -> str | None:
    """The `operationName` of the request, None when it sent none.

    Why private: `ExecutionContext.operation_name` falls back to the first operation's
    name, so it cannot tell a document of several operations sent without
    `operationName` (OPERATION_NAME_REQUIRED) from one that names its first; only
    `ExecutionContext._provided_operation_name` keeps what was sent. Public
    replacement: that value as a public attribute, when Strawberry has one."""
    return context._provided_operation_name


def null_is_one_of_on_wrappers(schema: GraphQLSchema) -> None:
    """Make `__Type.isOneOf` null on a List or NonNull type instead of a crash.

    Strawberry (0.341) replaces graphql-core's resolver of `isOneOf` with one that reads
    `type.extensions`, which a wrapping type does not have, so `{ __type(name: "Task")
    { fields { type { isOneOf } } } }` raised AttributeError once per field. The spec
    answers null for any type that is not an input object; a wrapping type is not one.
    The named types keep Strawberry's answer. Idempotent; uses only graphql-core's
    public types. `__Type` is graphql-core's one object, shared by every schema, and
    Strawberry puts a new `isOneOf` on it each time it builds one: call this after
    building a schema.

    Why here: it works around what Strawberry's private `_extend_introspection` does,
    and must be looked at again when that changes. Public replacement: none needed once
    Strawberry's resolver answers wrapping types itself."""
    field = schema.type_map["__Type"].fields.get("isOneOf")  # type: ignore[union-attr]
    resolve = getattr(field, "resolve", None)
    if field is None or resolve is None or getattr(resolve, "nulls_wrappers", False):
        return

    def is_one_of(type_: Any, info: GraphQLResolveInfo) -> bool | None:
        return None if is_wrapping_type(type_) else resolve(type_, info)

    is_one_of.nulls_wrappers = True  # type: ignore[attr-defined]
    field.resolve = is_one_of


__all__ = ["SUPPORTED", "graphql_schema", "null_is_one_of_on_wrappers", "provided_operation_name"]
