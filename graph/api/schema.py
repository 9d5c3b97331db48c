"""The Strawberry schema: `Query`, `Mutation` and `Subscription`, composed per area,
with the query limits, error codes and masking, and error logging."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graph.api.batches import BatchMutation, BatchSubscription
from graph.api.context import OneQueueReadPerOperation
from graph.api.mutations import Mutation
from graph.api.operation_telemetry import OperationTelemetry
from graph.api.queries import Query
from graph.api.query_limits import limit_extensions
from graph.api.strawberry_compat import graphql_schema, null_is_one_of_on_wrappers
from graph.api.subscriptions import Subscription
from graph.api.webhooks import WebhookMutation, WebhookQuery
from graph.errors import CoercingExecutionContext, MaskUnexpectedErrors, log_errors
from graph.settings import Settings, get_settings
from graph.telemetry.tracing import graphql_extension, setup_tracing


class PostAssistSchema(strawberry.Schema):
    """A `strawberry.Schema` that logs a client's mistake in one line and a bug with its
    traceback and request id (`graph.errors.log_errors`, once per distinct error of a
    response) instead of a traceback for all, and answers `isOneOf` on a wrapping type
    (`graph.api.strawberry_compat.null_is_one_of_on_wrappers`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        null_is_one_of_on_wrappers(graphql_schema(self))

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log `errors` (see the class); called before masking."""
        log_errors(errors)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """Return the PostAssist schema: errors masked unless they are a client's mistake,
    and the query limits of `settings` (the defaults of `Settings` without it; the SDL
    does not depend on them); each operation's principal in its log lines and its
    subscriptions counted (`OperationTelemetry`), and traced with OpenTelemetry when
    tracing is on."""
    settings = settings or get_settings()
    provider = setup_tracing(settings)
    tracing = [graphql_extension(provider)] if provider is not None else []
    return PostAssistSchema(
        query=merge_types("Query", (Query, WebhookQuery)),
        mutation=merge_types("Mutation", (Mutation, BatchMutation, WebhookMutation)),
        subscription=merge_types("Subscription", (Subscription, BatchSubscription)),
        extensions=[
            partial(MaskUnexpectedErrors, suggestions=settings.graphql_field_suggestions),
            *limit_extensions(settings),
            OneQueueReadPerOperation,
            OperationTelemetry,
            *tracing,
        ],
        config=StrawberryConfig(disable_field_suggestions=not settings.graphql_field_suggestions),
        execution_context_class=CoercingExecutionContext,
    )


__all__ = ["PostAssistSchema", "build_schema"]
