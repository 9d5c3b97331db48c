"""The settings that bound one request before it runs (`RequestLimitSettings`): the
GraphQL document's depth, aliases, characters, tokens and cost, the HTTP body cap,
introspection and field suggestions, and WebSocket messages and operations."""

from __future__ import annotations

from pydantic import BaseModel, Field

from graph.settings.fields import count


class RequestLimitSettings(BaseModel):
    """How much one request may ask (environment variables of the same name in upper
    case); `graph.api.query_limits` and the transport enforce them."""

    max_query_depth: int = Field(
        10,
        ge=2,
        le=100,
        description="deepest field nesting of an operation (introspection: "
        "MAX_INTROSPECTION_DEPTH)",
    )
    max_query_aliases: int = count(30, 10_000, "aliases per document")
    max_query_chars: int = Field(
        32_768,
        ge=1_024,
        le=10_000_000,
        description="characters per document, checked before parsing: lexing 256 KiB took "
        "~75 ms of the event loop; GraphiQL's introspection query has ~2,000",
    )
    max_query_tokens: int = Field(
        2000, ge=100, le=1_000_000, description="lexical tokens per document; parsing stops past it"
    )
    max_query_cost: int = Field(
        20_000,
        ge=100,
        description="estimated fields resolved per operation: list fields multiply their "
        "children by `first` (connections) or 10 (other lists)",
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, description="HTTP request body cap in bytes; larger bodies get HTTP 413"
    )
    graphql_introspection: bool = Field(
        True, description="false in production: no __schema/__type queries and no GraphiQL"
    )
    graphql_introspection_with_auth: bool = Field(
        False,
        description="true: answer __schema/__type when callers authenticate (a key or "
        "JWTs exist, or AUTH_DISABLED behind a gateway); false: only in local mode",
    )
    max_introspection_fields: int = count(
        2, 100, "__schema and __type fields per document (GraphiQL sends one __schema)"
    )
    max_introspection_depth: int = Field(
        15,
        ge=2,
        le=100,
        description="deepest nesting under __schema or __type, in fields, itself included "
        "(GraphiQL's introspection query is 15 deep: nine levels of ofType)",
    )
    graphql_field_suggestions: bool = Field(
        True, description='false in production: no "Did you mean ...?" in validation errors'
    )
    ws_init_timeout_seconds: float = Field(
        3.0, gt=0, description="WebSocket close (4408) when no connection_init arrives in time"
    )
    ws_max_subscriptions: int = count(
        10, 1000, "operations one WebSocket connection may run at once"
    )
    # 256 KiB, as MAX_BODY_BYTES: a WebSocket message carries what an HTTP body would
    # (uvicorn's own default, 16 MiB, let one message stall the server for seconds).
    ws_max_size: int = Field(
        262_144,
        ge=1024,
        le=16 * 1024 * 1024,
        description="largest WebSocket message, in bytes (uvicorn's ws_max_size, after "
        "decompression); a larger one closes the connection with 1009",
    )
    # 16 KiB, h11's cap on a request head: credentials that fit in an HTTP header fit.
    ws_init_max_size: int = Field(
        16_384,
        ge=1024,
        description="largest WebSocket message before connection_ack (connection_init "
        "with its credentials), in bytes, at most WS_MAX_SIZE; larger closes with 1009 "
        "before authentication",
    )
