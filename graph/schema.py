"""The Strawberry schema: `Query`, `Mutation` and `Subscription`, composed per area."""

from __future__ import annotations

import strawberry

from graph.errors import MaskUnexpectedErrors
from graph.mutations import Mutation
from graph.queries import Query
from graph.subscriptions import Subscription


def build_schema() -> strawberry.Schema:
    """Return the PostAssist schema (errors masked unless they are PostAssistErrors)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[MaskUnexpectedErrors],
    )


__all__ = ["build_schema"]
