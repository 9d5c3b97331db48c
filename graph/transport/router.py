"""The GraphQL router: Strawberry's FastAPI router with request bodies checked strictly
(HTTP 400 with a GraphQL-shaped body for anything that is not a GraphQL request), both
WebSocket protocols (`ws_protocols`) over the size-checking adapter (`ws_adapter`), and
the authentication of a WebSocket at `connection_init`, and subscriptions over plain
HTTP with Strawberry's own transports: Apollo's multipart subscriptions
(`Accept: multipart/mixed;subscriptionSpec="1.0"`, a `{}` heartbeat every 5 s) and
GraphQL over SSE in the distinct connections mode (`Accept: text/event-stream`; `next`
and `complete` events, each `taskProgress` event with `id: <seq>`, `Last-Event-ID`
resuming after it: `graph.transport.sse`), each stream counted against its principal's
connections (`graph.transport.http_streams`).

A refused `connection_init` closes with a code that says why, on both protocols
(`CREDENTIALS_CLOSE`, `TOO_MANY_CONNECTIONS_CLOSE`); the README's "WebSocket close
codes" table lists every code the server uses.

No WebSocket message is parsed before its size is checked (`WS_INIT_MAX_SIZE` until
`connection_ack`, then `WS_MAX_SIZE`: close 1009), and every malformed one closes the
connection with 4400 or is answered with an `error` (`BAD_REQUEST`), never a traceback:
JSON nested past the parser's recursion limit, a `subscribe` whose fields have the
wrong types, a graphql-ws `start` of a query or mutation."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport, MultipartSubscriptionTransport
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.unset import UNSET, UnsetType

from graph.api.context import Context
from graph.api.query_limits import HTTP_STREAM
from graph.errors import TOO_MANY_CONNECTIONS, UnauthenticatedError, error_body, error_entry
from graph.security.connection_caps import connection_cap
from graph.security.local_mode import made_locally
from graph.security.principals import authorization_from_params
from graph.transport.http_streams import CountedStream, StreamRefused, acquire_stream
from graph.transport.ide import offline_html
from graph.transport.sse import (
    EVENT_ID_KEY,
    EventIdSSETransport,
    event_id,
    last_event_id,
    resume_plan,
)
from graph.transport.ws_adapter import (
    CREDENTIALS_CLOSE,
    TOO_MANY_CONNECTIONS_CLOSE,
    RefusingWebSocketAdapter,
    mark_acknowledged,
    refuse,
)
from graph.transport.ws_protocols import LegacyWSHandler, TransportWSHandler

logger = logging.getLogger(__name__)

#: The HTTP streaming protocols, by the names Strawberry enables them with.
HTTP_STREAM_PROTOCOLS = (MULTIPART_SUBSCRIPTION_PROTOCOL, GRAPHQL_SSE_PROTOCOL)
#: Their transports' names for a request (`GraphQLRequestData.protocol`).
STREAM_REQUESTS = (MultipartSubscriptionTransport.protocol, EventIdSSETransport.protocol)


class PostAssistRouter(GraphQLRouter):
    """`GraphQLRouter` that answers every HTTP error of its own (a body that is not
    JSON, not UTF-8, not an object; batching; a GET mutation) with a GraphQL-shaped
    JSON body and the status code, and speaks both WebSocket protocols with an init
    deadline of `init_timeout` seconds, at most `max_subscriptions` operations per
    connection, and messages of at most `init_max_bytes` before `connection_ack` and
    `max_message_bytes` after (bytes of UTF-8; None: no limit of its own; the smaller
    of the two applies before the ack); and streams subscriptions over HTTP (multipart,
    SSE; see the module), each stream one of its principal's connections."""

    graphql_ws_handler_class = LegacyWSHandler
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = RefusingWebSocketAdapter  # type: ignore[assignment]
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = {
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
        GRAPHQL_SSE_PROTOCOL: EventIdSSETransport,
    }

    def __init__(self, schema: Any, *, init_timeout: float, max_subscriptions: int,
                 max_message_bytes: int | None = None, init_max_bytes: int | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(
            schema,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                *HTTP_STREAM_PROTOCOLS,
            ),
            connection_init_wait_timeout=timedelta(seconds=init_timeout),
            max_subscriptions_per_connection=max_subscriptions,
            **kwargs,
        )
        self.max_message_bytes = max_message_bytes
        limits = [n for n in (init_max_bytes, max_message_bytes) if n is not None]
        self.init_max_bytes = min(limits) if limits else None

    @property
    def graphql_ide_html(self) -> str:
        """The GraphiQL page, loading its files from this server (`graph.transport.ide`)."""
        return offline_html()

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket at `connection_init`: the `Authorization` in its
        payload (see `authorization_from_params`), else the upgrade request's header.

        Refused without a principal (graphql-ws: a `connection_error` with
        UNAUTHENTICATED; then both protocols close with 4403 "Forbidden"), and when the
        principal already holds its cap of connections (`connection_cap`: graphql-ws, a
        `connection_error` with TOO_MANY_CONNECTIONS, `extensions.limit` and
        `extensions.setting`; then both close with 4929 and a reason such as "too many
        connections: WS_MAX_CONNECTIONS_PER_PRINCIPAL=20")."""
        services = context.services
        if context.counted is not None:  # a repeated graphql-ws connection_init
            services.connections.release(context.counted)
            context.counted = None
        authorization = (
            authorization_from_params(context.connection_params) or context.upgrade_authorization
        )
        try:
            principal = await services.auth.authenticate(authorization, local=context.local)
        except UnauthenticatedError as exc:
            logger.info("WebSocket connection_init refused: %s", exc.message)
            raise refuse(context, exc.formatted, CREDENTIALS_CLOSE, "Forbidden") from None
        cap = connection_cap(principal, services.settings)
        if not services.connections.acquire(principal, cap.limit):
            logger.info("WebSocket refused: %s holds %d connections (%s)",
                        principal.id, cap.limit, cap.setting)  # fmt: skip
            message = (
                f"this principal already holds {cap.limit} open WebSocket connections, the "
                f"most {cap.setting} allows on one API process: close one, or raise "
                f"{cap.setting}"
            )
            error = error_entry(message, TOO_MANY_CONNECTIONS, limit=cap.limit, setting=cap.setting)
            reason = f"too many connections: {cap.setting}={cap.limit}"
            raise refuse(context, error, TOO_MANY_CONNECTIONS_CLOSE, reason)
        context.principal = principal
        context.counted = principal
        context.authorization = authorization
        assert isinstance(context.request, HTTPConnection)
        mark_acknowledged(context.request)
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's `run`, with its HTTP errors as GraphQL-shaped JSON, and a
        streaming request's count given back if no stream took it over."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            if self.is_websocket_request(request):
                raise
            logger.info("HTTP %s: %s", exc.status_code, exc.reason)
            return JSONResponse(error_body(exc.reason), status_code=exc.status_code)
        except StreamRefused as refused:
            return refused.response
        finally:
            if not self.is_websocket_request(request):
                _release_stream(request)

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: Any,
        context: Any,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        """Strawberry's, and for a streaming request (SSE, multipart): marked as one
        (`HTTP_STREAM`, so `OperationGuard` lets a subscription run), resumed after its
        `Last-Event-ID` (SSE), and counted against its principal's connections
        (`acquire_stream`: HTTP 429 past the cap)."""
        protocol = getattr(request_data, "protocol", "http")
        streams = protocol in STREAM_REQUESTS
        if not isinstance(request_data, GraphQLRequestData) or not streams:
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        request.scope[HTTP_STREAM] = protocol
        if protocol == EventIdSSETransport.protocol:
            settings = context.services.settings
            plan = resume_plan(
                request_data.query,
                request_data.variables,
                request_data.operation_name,
                last_event_id(request.headers),
                max_chars=settings.max_query_chars,
                max_tokens=settings.max_query_tokens,
            )
            request_data = dataclasses.replace(
                request_data, query=plan.query, variables=plan.variables
            )
            request.state.sse_event_key = plan.event_key
        principal = acquire_stream(context, protocol)
        # What `CountedStream` authenticates again while the stream stays open.
        context.authorization = request.headers.get("authorization")
        context.local = made_locally(request.scope, request.headers)
        request.state.counted_stream = (context, principal)
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        request.state.stream_source = result
        return result

    async def process_result(self, request: Any, result: Any) -> Any:
        """Strawberry's, with the event's seq for the SSE `id:` line of a `taskProgress`
        stream (`graph.transport.sse`)."""
        response = await super().process_result(request, result)
        key = getattr(request.state, "sse_event_key", None)
        if key is not None and (seq := event_id(response.get("data"), key)) is not None:
            response[EVENT_ID_KEY] = seq  # type: ignore[literal-required]
        return response

    async def create_streaming_response(
        self,
        request: Any,
        stream: Callable[[], AsyncIterator[str]],
        sub_response: Any,
        headers: Mapping[str, str],
    ) -> Any:
        """Strawberry's streaming response, as a `CountedStream` that gives back the
        request's count when it ends (and stops when its credentials fail)."""
        counted = getattr(request.state, "counted_stream", None)
        request.state.counted_stream = None  # the response owns it now
        if counted is None:
            return await super().create_streaming_response(request, stream, sub_response, headers)
        context, principal = counted
        return CountedStream(
            stream(),
            context=context,
            release=lambda: context.services.connections.release(principal),
            source=getattr(request.state, "stream_source", None),
            status_code=sub_response.status_code or 200,
            headers={**sub_response.headers, **headers},
        )

    def parse_json(self, data: str | bytes) -> Any:
        """The request body as JSON: UTF-8 only, an object (or a list, which batching
        refuses); HTTP 400 otherwise."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            parsed = json.loads(text)
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "the request body is not valid UTF-8") from exc
        except (json.JSONDecodeError, RecursionError) as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(parsed, (dict, list)):
            kind = type(parsed).__name__ if parsed is not None else "null"
            raise HTTPException(400, f"the request body must be a JSON object, not {kind}")
        return parsed


def _release_stream(request: Any) -> None:
    """Give back the count of a streaming request that ended without a stream (an
    error before it started)."""
    state = getattr(request, "state", None)
    counted = getattr(state, "counted_stream", None) if state is not None else None
    if counted is not None:
        state.counted_stream = None
        context, principal = counted
        context.services.connections.release(principal)


__all__ = ["HTTP_STREAM_PROTOCOLS", "PostAssistRouter"]
