"""`OperationTelemetry`, the schema extension that tells operators about each GraphQL
operation: its caller's id bound to the operation's log lines (`principal`, beside the
request's `request_id`, `graph.telemetry.logs`), and each running subscription counted
in `postassist_active_subscriptions` by transport (websocket, or http for the SSE and
multipart ones) until it ends, however it ends."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from graph.api.context import Context
from graph.errors import UnauthenticatedError
from graph.telemetry.metrics import ACTIVE_SUBSCRIPTIONS


class OperationTelemetry(SchemaExtension):
    """See the module. Costs a contextvar set per operation and, for a subscription, a
    gauge's inc and dec."""

    def on_operation(self) -> Iterator[None]:
        """Bind `principal`, run the operation (a subscription: its whole life), then
        count a subscription that `on_execute` counted as ended."""
        self._counted: str | None = None
        context = self.execution_context.context
        if isinstance(context, Context):
            try:
                structlog.contextvars.bind_contextvars(principal=context.principal.id)
            except UnauthenticatedError:
                pass  # not known yet (GraphiQL's page); the operation is refused anyway
        try:
            yield
        finally:
            if self._counted is not None:
                ACTIVE_SUBSCRIPTIONS.labels(self._counted).dec()

    def on_execute(self) -> Iterator[None]:
        """Count a subscription as it starts (the operation type is known here)."""
        if self.execution_context.operation_type == OperationType.SUBSCRIPTION:
            context = self.execution_context.context
            request = getattr(context, "request", None)
            self._counted = "websocket" if isinstance(request, WebSocket) else "http"
            ACTIVE_SUBSCRIPTIONS.labels(self._counted).inc()
        yield
