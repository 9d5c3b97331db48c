"""Structured logs: JSON lines with the request's id (taken from, or made for, and
echoed in `X-Request-ID`) and principal, a bug's masked error naming the same id, a
worker's lines naming the task and the worker; uvicorn's access lines as fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from graph.app import create_app
from graph.settings import Settings
from graph.telemetry import OWN_LOGGERS
from graph.telemetry.logs import (
    OWN_HANDLER_LOGGERS,
    UVICORN_LOGGERS,
    configure_logging,
    formatter,
    log_format,
    remove_handler,
)
from graph.telemetry.request_id import MAX_LENGTH, accepted
from tests.fakes import scripted
from tests.graph.api.test_api import generate
from tests.graph.conftest import GQL

pytestmark = pytest.mark.anyio


class Lines:
    """The JSON log lines written so far."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def __call__(self, **match: Any) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.stream.getvalue().splitlines() if line]
        return [ln for ln in lines if all(ln.get(k) == v for k, v in match.items())]


@pytest.fixture
def app(sqlite_url: str) -> FastAPI:
    """Authentication disabled (everyone is the local principal): local mode refuses a
    request with `X-Request-ID`, a header proxies add (`graph.security.local_mode`)."""
    settings = Settings(
        database_url=sqlite_url, follow_poll_seconds=0.5, auth_disabled=True, _env_file=None
    )
    return create_app(settings, model_factory=scripted)


@pytest.fixture
def lines() -> Iterator[Lines]:
    """Logging configured as `serve` does, in JSON, into a buffer; put back after."""
    names = ("", *OWN_LOGGERS, *UVICORN_LOGGERS, *OWN_HANDLER_LOGGERS)
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    stream = io.StringIO()
    handler = configure_logging(level="info", fmt="json", stream=stream)
    try:
        yield Lines(stream)
    finally:
        remove_handler(handler)
        for name, (level, handlers, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate = propagate


async def test_a_request_id_is_echoed_and_on_its_log_lines_with_the_principal(
    gql: GQL, lines: Lines
) -> None:
    response = await gql.client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"X-Request-ID": "req-42.from/the:lb"}
    )
    assert response.headers["x-request-id"] == "req-42.from/the:lb"
    (line,) = lines(logger="graph.errors")
    assert line["request_id"] == "req-42.from/the:lb" and line["principal"] == "local"
    assert line["level"] == "info" and line["event"].startswith("client error")
    assert line["timestamp"].endswith("Z")


async def test_without_a_sane_request_id_one_is_made(gql: GQL) -> None:
    made = (await gql.client.get("/healthz")).headers["x-request-id"]
    assert len(made) == 16 and int(made, 16) >= 0
    long = "x" * (MAX_LENGTH + 1)
    replaced = await gql.client.get("/healthz", headers={"X-Request-ID": long})
    assert replaced.headers["x-request-id"] not in (long, made)
    assert accepted("a" * MAX_LENGTH) == "a" * MAX_LENGTH
    for bad in (
        "",
        "   ",
        "line\nforged",
        "tab\there",
        "caf\u00e9",
        "\x7f",
        "x principal=admin",
        'q"uote',
    ):
        assert accepted(bad) is None, bad


async def test_a_bugs_masked_error_names_the_requests_id(
    gql: GQL, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db import repository

    async def broken(**_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(repository, "get_task", broken)
    response = await gql.client.post(
        "/graphql",
        json={"query": '{ task(id: "x") { id } }'},
        headers={"X-Request-ID": "trace-me"},
    )
    assert response.json()["errors"][0]["extensions"]["requestId"] == "trace-me"
    (line,) = lines(logger="graph.errors", level="error")
    assert line["request_id"] == "trace-me" and "RuntimeError: boom" in line["exception"]


@pytest.fixture
def failing_app(sqlite_url: str) -> FastAPI:
    """An app whose model cannot be built: each task fails, logged by the worker."""

    def no_model() -> Any:
        raise RuntimeError("no model in this test")

    settings = Settings(database_url=sqlite_url, follow_poll_seconds=0.5, _env_file=None)
    return create_app(settings, model_factory=no_model)


async def test_a_workers_lines_name_the_task_and_the_worker(
    failing_app: FastAPI, lines: Lines
) -> None:
    async with LifespanManager(failing_app, startup_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            gql = GQL(client)
            task_id = await generate(gql)
            status = (await gql.wait_until_finished(task_id))["status"]
    assert status == "FAILED"
    (line,) = lines(logger="agents.runtime.execution", task_id=task_id)
    assert line["level"] == "error" and line["worker_id"]
    assert "RuntimeError: no model in this test" in line["exception"]
    assert "request_id" not in line  # a run is no request's, even when one enqueued it


def test_uvicorn_access_lines_become_fields() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200),
        None,
    )
    line = json.loads(formatter("json").format(record))
    assert line["event"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert (line["method"], line["path"], line["status_code"]) == ("GET", "/healthz", 200)
    assert line["logger"] == "uvicorn.access" and line["level"] == "info"


def test_console_on_a_terminal_json_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert log_format(None, io.StringIO()) == "json"
    assert log_format(None, Terminal()) == "console"
    assert log_format("console", io.StringIO()) == "console"
    line = formatter("console").format(
        logging.LogRecord("graph.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    )
    assert "hello you" in line and "warning" in line and "{" not in line
