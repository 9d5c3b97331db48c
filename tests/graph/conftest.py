"""An app on a real SQLite file with the scripted model, through ASGI or real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from graph.app import create_app
from graph.settings import Settings
from tests.fakes import ScriptedChatModel, scripted

#: Seconds a scripted generation may take before a test gives up.
FINISH_WITHIN = 20.0


@pytest.fixture
def model() -> ScriptedChatModel:
    return scripted(verification_order=["style_checker"])


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        follow_poll_seconds=0.5,
        rate_limit_mutations="10000/minute",  # the rate limit has tests of its own
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


class GQL:
    """Posts GraphQL over the ASGI app; returns the whole response body."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables})
        return response.json()

    async def wait_until_finished(self, task_id: str) -> dict[str, Any]:
        query = "query($id: ID!) { task(id: $id) { status lastSeq } }"
        async with asyncio.timeout(FINISH_WITHIN):
            while True:
                task = (await self(query, id=task_id))["data"]["task"]
                if task["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    return task
                await asyncio.sleep(0.05)


#: Seconds the ASGI lifespan may take to start and to stop: a stop waits up to
#: SHUTDOWN_GRACE_SECONDS (10) for running tasks, longer than asgi-lifespan's 5 s default
#: (a test that leaves a task running failed its teardown with TimeoutError).
LIFESPAN_TIMEOUT = 30.0


@pytest.fixture
async def gql(app: FastAPI) -> AsyncIterator[GQL]:
    async with LifespanManager(
        app, startup_timeout=LIFESPAN_TIMEOUT, shutdown_timeout=LIFESPAN_TIMEOUT
    ) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield GQL(client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[str]:
    """`app` served by uvicorn on this loop at `port`; yields `host:port`."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[Callable[[str], str]]:
    """Serve `app` with uvicorn on a free loopback port; yields `url(path)`."""
    async with serve(app, free_port()) as host:
        yield lambda path: f"{host}{path}"
