"""A small GraphQL client for the CLI and the end-to-end test: queries over HTTP
(httpx) and subscriptions over WebSocket with the `graphql-transport-ws` protocol.

With an API key (or JWT) it authenticates as the server expects: `Authorization:
Bearer <key>` on every HTTP request (the WebSocket upgrade included) and
`{"Authorization": "Bearer <key>"}` as the `connection_init` payload."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import websockets

TASK_FIELDS = """
  id kind status paperTitle progress currentTeam currentAgent revisions lastSeq approved
  createdAt startedAt completedAt
  result { content hashtags wordCount characterCount approved openIssues }
  verificationReports { agent kind score approved issues modelJudgement }
  error { code message }
  usage { llmCalls inputTokens outputTokens totalTokens }
  teams { name displayName status progress
          agents { name displayName status currentActivity progress error } }
"""
GENERATE_POST = f"""
mutation GeneratePost($input: GeneratePostInput!, $idempotencyKey: String) {{
  generatePost(input: $input, idempotencyKey: $idempotencyKey) {{ {TASK_FIELDS} }}
}}"""
TASK = f"""query Task($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}"""
TASK_PROGRESS = """
subscription TaskProgress($taskId: ID!, $afterSeq: Int!, $includeDrafts: Boolean = false) {
  taskProgress(taskId: $taskId, afterSeq: $afterSeq, includeDrafts: $includeDrafts) {
    id seq timestamp team agent kind message data progress status attempt isTerminal
  }
}"""


#: `extensions.code` of a request without a principal (HTTP 401, a refused WebSocket).
UNAUTHENTICATED = "UNAUTHENTICATED"
#: Close code of a `connection_init` refused because this principal already holds as many
#: WebSockets as the server allows (graph.transport.ws_adapter.TOO_MANY_CONNECTIONS_CLOSE; the
#: close reason names the limit and its setting).
TOO_MANY_CONNECTIONS_CLOSE = 4929
#: Where a PostAssist server serves GraphQL (HTTP and WebSocket).
GRAPHQL_PATH = "/graphql"
#: HTTP statuses without a GraphQL body that mean "no GraphQL endpoint at this path".
NO_ENDPOINT_STATUSES = frozenset({404, 405})
#: Attempts `submit` makes of a mutation when the connection fails (the first included).
SUBMIT_ATTEMPTS = 4
#: Seconds `submit` waits before its first retry; doubled before each next one (1, 2, 4).
SUBMIT_BACKOFF = 1.0
#: HTTP statuses without a GraphQL body that a proxy in front of the server answers when
#: the server is restarting or slow: `submit` retries them like a dropped connection.
RETRY_STATUSES = frozenset({502, 503, 504})
#: graphql-transport-ws close codes of a refused `connection_init`: 4401/4403 when the
#: server rejects the credentials, TOO_MANY_CONNECTIONS_CLOSE for a full connection cap.
REFUSED_CLOSE_CODES = frozenset({4401, 4403, TOO_MANY_CONNECTIONS_CLOSE})


class GraphQLClientError(RuntimeError):
    """The server answered with GraphQL errors; `errors` holds them as sent (or as the
    client made them up for an answer without any: see `GraphQLClientError.of`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {}
        code = (first.get("extensions") or {}).get("code", "ERROR")
        super().__init__(f"{code}: {first.get('message', 'unknown error')}")

    @classmethod
    def of(cls, message: str, code: str) -> GraphQLClientError:
        """One error `{"message": message, "extensions": {"code": code}}`."""
        return cls([{"message": message, "extensions": {"code": code}}])

    @property
    def code(self) -> str:
        """`extensions.code` of the first error."""
        return (self.errors[0].get("extensions") or {}).get("code", "ERROR")


def _graphql_errors(body: Any) -> list[dict[str, Any]] | None:
    """The `errors` list of a GraphQL-shaped body (a dict, or JSON text or bytes of
    one); None when `body` is anything else."""
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        return errors
    return None


def graphql_url(url: str) -> str:
    """`url` with the GraphQL path appended: `http://host:8000` ->
    `http://host:8000/graphql` (a server's GraphQL endpoint is at `/graphql`)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path=parsed.path.rstrip("/") + GRAPHQL_PATH))


def websocket_url(url: str) -> str:
    """`http(s)://host/graphql` -> `ws(s)://host/graphql`."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


class GraphQLClient:
    """Client for one GraphQL endpoint URL (e.g. http://127.0.0.1:8000/graphql).

    `timeout` is seconds per HTTP request (a `verifyPost` waits for the model).
    `api_key` is an API key (`pa_...`, from `postassist keys create`) or a JWT, sent as
    `Authorization: Bearer <api_key>`; None (or blank) sends no credentials, which only a
    server in local mode (loopback, no key created) accepts.
    """

    def __init__(self, url: str, *, timeout: float = 300.0, api_key: str | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.api_key = (api_key or "").strip() or None

    @property
    def headers(self) -> dict[str, str]:
        """`{"Authorization": "Bearer <api_key>"}`, or `{}` without a key."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _unauthenticated(self, refusal: str, also: str = "") -> GraphQLClientError:
        """An UNAUTHENTICATED error for a refusal that came without a GraphQL body."""
        cause = (
            "the API key sent is not valid (unknown or revoked)"
            if self.api_key
            else "the server requires an API key and none was sent"
        )
        return GraphQLClientError.of(f"{refusal}: {cause}{also}", UNAUTHENTICATED)

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict:
        """Run a query or mutation; return `data`.

        Raises `GraphQLClientError` on GraphQL errors, HTTP 401 included (code
        UNAUTHENTICATED: no key, or one that is unknown or revoked), or an answer that
        is not GraphQL, a 404 or 405 included (code BAD_RESPONSE; the message names the
        path tried and suggests /graphql); `httpx.HTTPError` when the server cannot be
        reached or answers another HTTP error without a GraphQL body.
        """
        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as http:
            response = await http.post(self.url, json={"query": query, "variables": variables})
        try:
            body = response.json()
        except ValueError:
            body = None
        if errors := _graphql_errors(body):
            raise GraphQLClientError(errors)
        if response.status_code == 401:
            raise self._unauthenticated(f"HTTP 401 from {self.url}")
        if response.status_code in NO_ENDPOINT_STATUSES:
            raise self._not_graphql(response.status_code)
        response.raise_for_status()
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise self._not_graphql(response.status_code)
        return body["data"]

    async def submit(
        self,
        query: str,
        variables: dict[str, Any],
        *,
        key: str | None = None,
        attempts: int = SUBMIT_ATTEMPTS,
        backoff: float = SUBMIT_BACKOFF,
        on_retry: Callable[[int, Exception], None] | None = None,
    ) -> dict:
        """Run a mutation that takes `$idempotencyKey` (generatePost, generatePosts) with
        `key` (a new uuid4 when None) as that variable; return `data`.

        When the request fails in transit (`httpx.TransportError`: the server could not
        be reached, or the connection dropped or timed out before the answer, so the
        server may or may not have stored the task) or a proxy answers 502/503/504, it
        is sent again with the SAME key, up to `attempts` times in all, waiting
        `backoff` s, then twice as long before each next try; `on_retry(attempt,
        error)` is told before each wait. The server answers a retry of a submission it
        already stored with that task, so a retried command never starts two runs. A
        GraphQL error is raised at once (`GraphQLClientError`), the last transport
        error after the last attempt."""
        variables = {**variables, "idempotencyKey": key or str(uuid.uuid4())}
        for attempt in range(1, attempts + 1):
            try:
                return await self.execute(query, variables)
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                retryable = not isinstance(exc, httpx.HTTPStatusError) or (
                    exc.response.status_code in RETRY_STATUSES
                )
                if not retryable or attempt == attempts:
                    raise
                if on_retry is not None:
                    on_retry(attempt, exc)
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _not_graphql(self, status: int) -> GraphQLClientError:
        """A BAD_RESPONSE error for an answer that is not GraphQL: it names the path
        tried and, when that path is not /graphql, where the endpoint would be."""
        path = httpx.URL(self.url).path or "/"
        message = f"{self.url} did not answer with GraphQL (HTTP {status} for path {path})"
        if not path.rstrip("/").endswith(GRAPHQL_PATH):
            message += f"; the GraphQL endpoint is at {GRAPHQL_PATH}: try {graphql_url(self.url)}"
        return GraphQLClientError.of(message, "BAD_RESPONSE")

    async def _connect(self) -> Any:
        """Open the WebSocket (graphql-transport-ws, the key in the upgrade's header).
        Raises `GraphQLClientError` for an upgrade refused with a GraphQL-shaped body
        or HTTP 401, `websockets.InvalidStatus` for another refusal."""
        try:
            return await websockets.connect(
                websocket_url(self.url),
                subprotocols=["graphql-transport-ws"],
                additional_headers=self.headers,
                open_timeout=30,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            if errors := _graphql_errors(exc.response.body):
                raise GraphQLClientError(errors) from None
            if status == 401:
                raise self._unauthenticated(
                    f"WebSocket upgrade refused with HTTP {status}"
                ) from None
            raise

    async def _initialise(self, ws: Any) -> None:
        """Send `connection_init` (the key in its payload) and wait for the ack,
        answering pings. Raises `GraphQLClientError` when the server refuses it (close
        4401/4403), `websockets.ConnectionClosed` if the connection drops otherwise."""
        init = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        try:
            while (ack := json.loads(await ws.recv()))["type"] != "connection_ack":
                if ack["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code not in REFUSED_CLOSE_CODES:
                raise
            if errors := _graphql_errors(exc.rcvd.reason):
                raise GraphQLClientError(errors) from None
            if exc.rcvd.code == TOO_MANY_CONNECTIONS_CLOSE:
                raise GraphQLClientError.of(
                    f"the server refused the WebSocket connection (close {exc.rcvd.code} "
                    f"{exc.rcvd.reason or 'too many connections'}): this principal holds "
                    "as many WebSockets as the server allows; close some, or raise the "
                    "setting the reason names",
                    "TOO_MANY_CONNECTIONS",
                ) from None
            raise self._unauthenticated(
                f"the server refused the WebSocket connection (close {exc.rcvd.code} "
                f"{exc.rcvd.reason or 'Forbidden'})"
            ) from None

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each `next` payload's `data` until the server sends `complete`.

        Speaks graphql-transport-ws: connection_init (with `{"Authorization": "Bearer
        <api_key>"}` as its payload when there is a key) -> connection_ack, subscribe,
        next..., complete. Raises `GraphQLClientError` on an `error` message, when the
        server refuses the connection (close 4401/4403 before the ack, or an upgrade
        answered with a GraphQL-shaped HTTP error such as 401: code UNAUTHENTICATED), and
        `websockets.ConnectionClosed` if the connection drops.
        """
        async with await self._connect() as ws:
            await self._initialise(ws)
            op_id = uuid.uuid4().hex
            await ws.send(json.dumps({
                "id": op_id, "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }))  # fmt: skip
            while True:
                message = json.loads(await ws.recv())
                kind = message["type"]
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next" and message.get("id") == op_id:
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise GraphQLClientError(payload["errors"])
                    yield payload["data"]
                elif kind == "error" and message.get("id") == op_id:
                    raise GraphQLClientError(message["payload"])
                elif kind == "complete" and message.get("id") == op_id:
                    return
