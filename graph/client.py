"""A small GraphQL client for the CLI and the end-to-end test: queries over HTTP
(httpx) and subscriptions over WebSocket with the `graphql-transport-ws` protocol."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
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
mutation GeneratePost($input: GeneratePostInput!) {{
  generatePost(input: $input) {{ {TASK_FIELDS} }}
}}"""
TASK = f"""query Task($id: ID!) {{ task(id: $id) {{ {TASK_FIELDS} }} }}"""
TASK_PROGRESS = """
subscription TaskProgress($taskId: ID!, $afterSeq: Int!) {
  taskProgress(taskId: $taskId, afterSeq: $afterSeq) {
    seq timestamp team agent kind message data progress status isTerminal
  }
}"""


class GraphQLClientError(RuntimeError):
    """The server answered with GraphQL errors; `errors` holds them as sent."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {}
        code = (first.get("extensions") or {}).get("code", "ERROR")
        super().__init__(f"{code}: {first.get('message', 'unknown error')}")

    @property
    def code(self) -> str:
        """`extensions.code` of the first error."""
        return (self.errors[0].get("extensions") or {}).get("code", "ERROR")


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
    """

    def __init__(self, url: str, *, timeout: float = 300.0) -> None:
        self.url = url
        self.timeout = timeout

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict:
        """Run a query or mutation; return `data`. Raises `GraphQLClientError` on
        GraphQL errors and `httpx.HTTPError` when the server cannot be reached."""
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            response = await http.post(self.url, json={"query": query, "variables": variables})
        body = response.json()
        if body.get("errors"):
            raise GraphQLClientError(body["errors"])
        response.raise_for_status()
        return body["data"]

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each `next` payload's `data` until the server sends `complete`.

        Speaks graphql-transport-ws: connection_init -> connection_ack, subscribe,
        next..., complete. Raises `GraphQLClientError` on an `error` message and
        `websockets.ConnectionClosed` if the connection drops.
        """
        async with websockets.connect(
            websocket_url(self.url), subprotocols=["graphql-transport-ws"], open_timeout=30
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            while (ack := json.loads(await ws.recv()))["type"] != "connection_ack":
                if ack["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
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
