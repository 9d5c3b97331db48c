"""A local stand-in for the arXiv API and Tavily, serving the hand-written fixtures of
`tests/agents/sources_fixtures` on a loopback port, so source tests never leave the machine.

- `GET /arxiv/query?id_list=<id>`: the fixture `arxiv_<id>.xml` (the version suffix
  dropped to find it), else the empty feed (arXiv has no such paper); `fail` and `delay`
  make an id answer an HTTP error (with arXiv's error feed for 400) or answer late.
- `POST /tavily/search`: `tavily_search.json` for a request with the expected key, HTTP
  401 otherwise; `fail_web` makes it answer that status.

Every request is recorded in `SourceServer.requests` as `(path, query or JSON body)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIXTURES = Path(__file__).parent / "agents" / "sources_fixtures"
TAVILY_KEY = "tvly-test-key"
ATOM = "application/atom+xml; charset=utf-8"


def fixture(name: str) -> str:
    """The text of fixture `name` (e.g. "arxiv_1706.03762.xml")."""
    return (FIXTURES / name).read_text(encoding="utf-8")


@dataclass
class SourceServer:
    """What the stand-in answers and what it was asked. `url` is set once it listens."""

    fail: dict[str, int] = field(default_factory=dict)  # arXiv id -> HTTP status
    delay: dict[str, float] = field(default_factory=dict)  # arXiv id -> seconds
    fail_web: int | None = None
    requests: list[tuple[str, Any]] = field(default_factory=list)
    url: str = ""

    @property
    def arxiv_url(self) -> str:
        return f"{self.url}/arxiv"

    @property
    def tavily_url(self) -> str:
        return f"{self.url}/tavily"

    def asked(self, path: str) -> list[Any]:
        """What the requests to `path` carried, in order."""
        return [what for p, what in self.requests if p == path]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/arxiv/query", self._arxiv),
                Route("/tavily/search", self._tavily, methods=["POST"]),
            ]
        )

    async def _arxiv(self, request: Request) -> Response:
        ids = request.query_params.get("id_list", "")
        self.requests.append(("/arxiv/query", dict(request.query_params)))
        base = re.sub(r"v\d+$", "", ids)
        await asyncio.sleep(self.delay.get(base, 0.0))
        if base in self.fail:
            status = self.fail[base]
            body = fixture("arxiv_error.xml") if status == 400 else "Internal Server Error"
            return Response(body, status_code=status, media_type=ATOM)
        path = FIXTURES / f"arxiv_{base}.xml"
        body = path.read_text(encoding="utf-8") if path.exists() else fixture("arxiv_empty.xml")
        return Response(body, media_type=ATOM)

    async def _tavily(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("/tavily/search", body))
        if self.fail_web is not None:
            return JSONResponse({"detail": {"error": "fixture failure"}}, self.fail_web)
        if request.headers.get("authorization") != f"Bearer {TAVILY_KEY}":
            return JSONResponse({"detail": {"error": "Unauthorized"}}, 401)
        return JSONResponse(json.loads(fixture("tavily_search.json")))


@contextlib.asynccontextmanager
async def serving(server: SourceServer) -> AsyncIterator[SourceServer]:
    """Serve `server` with uvicorn on this loop, on a loopback port of its own."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        server.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=0.1
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not uv.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    try:
        yield server
    finally:
        uv.should_exit = True
        await task
        sock.close()


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def no_internet(monkeypatch: Any) -> None:
    """Make every connection or name look-up beyond loopback fail at once (OSError), so
    a test that would reach the internet fails instead of leaving the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in LOOPBACK:
            raise OSError(f"a test tried to reach {host}: no network access in tests")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            raise socket.gaierror(f"a test tried to resolve {name}: no network access in tests")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection or name look-up beyond loopback for the test (`no_internet`)."""
    no_internet(monkeypatch)


@pytest.fixture
async def server() -> AsyncIterator[SourceServer]:
    """A `SourceServer` serving on a loopback port for the test."""
    async with serving(SourceServer()) as running:
        yield running
