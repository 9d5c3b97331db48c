"""Query limits, request body cap, client-error codes and HTTP 400s (issue 8)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.api.pagination import encode_cursor
from graph.app import create_app
from graph.settings import Settings
from tests.fakes import scripted
from tests.graph.conftest import GQL

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}


async def post(gql: GQL, body: Any, **headers: str) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await gql.client.post(
        "/graphql", content=raw, headers={"content-type": "application/json", **headers}
    )


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_alias_flood_is_rejected_before_it_runs(gql: GQL) -> None:
    fields = " ".join(
        f"a{i}: tasks(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(1000)
    )
    start = time.perf_counter()
    response = await post(gql, {"query": f"{{ {fields} }}"})
    elapsed = time.perf_counter() - start
    print(f"\n1,000 aliases of tasks(first: 100): rejected in {elapsed * 1000:.1f} ms")
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["extensions"]["limit"] in ("length", "aliases", "tokens")


async def test_a_5_mb_query_is_refused_with_413(gql: GQL) -> None:
    query = "{ " + "teams { name } " * (5 * 1024 * 1024 // 16) + "}"
    start = time.perf_counter()
    response = await post(gql, {"query": query})
    elapsed = time.perf_counter() - start
    print(f"\n5 MB query: HTTP {response.status_code} in {elapsed * 1000:.1f} ms")
    assert response.status_code == 413
    assert codes(response.json()) == ["PAYLOAD_TOO_LARGE"]


async def test_a_chunked_body_over_the_cap_is_refused(gql: GQL) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 16384

    response = await gql.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("{ " + " ".join(f"a{i}: teams {{ name }}" for i in range(31)) + " }", "aliases"),
        ("{ " + "teams { name } " * 700 + "}", "tokens"),
        ("{ teams { name } } # " + "a comment is no token " * 2000, "length"),  # 44 KB
        (
            "{ tasks(first: 100) { edges { node { id teams { name agents { name status "
            "currentActivity } } verificationReports { agent issues checks } } } } "
            "b: tasks(first: 100) { edges { node { teams { agents { name } } } } } }",
            "cost",
        ),
    ],
)
async def test_query_limits(gql: GQL, query: str, limit: str) -> None:
    body = (await post(gql, {"query": query})).json()
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert body["errors"][0]["extensions"]["limit"] == limit


async def test_depth_limit(gql: GQL) -> None:
    query = "{ tasks { edges { node { teams { agents { name } } } } } }"
    assert "errors" not in (await post(gql, {"query": query})).json()
    too_deep = "{ " + "teams { agents { " * 6 + "name" + " } }" * 6 + " }"
    body = (await post(gql, {"query": too_deep})).json()
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "depth" in [e["extensions"].get("limit") for e in body["errors"]]


async def test_cost_counts_first_from_variables(gql: GQL) -> None:
    query = (
        "query($n: Int!) { a: tasks(first: $n) { edges { node { teams { agents { name } } } } }"
        " b: tasks(first: $n) { edges { node { teams { agents { name } } } } } }"
    )
    assert "errors" not in (await post(gql, {"query": query, "variables": {"n": 5}})).json()
    body = (await post(gql, {"query": query, "variables": {"n": 100}})).json()
    assert body["errors"][0]["extensions"]["limit"] == "cost"


async def test_a_query_text_is_validated_once_and_an_invalid_one_every_time(
    gql: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graph.api import query_limits

    calls: list[int] = []
    real = query_limits.validate_document

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(query_limits, "validate_document", counted)
    query = "query($n: Int!) { tasks(first: $n) { edges { node { id status } } } }"
    for n in (1, 2, 3):
        assert "errors" not in (await post(gql, {"query": query, "variables": {"n": n}})).json()
    assert len(calls) == 1
    wrong = "{ tasks(first: 1) { edges { node { nope } } } }"
    for _ in range(2):
        assert codes((await post(gql, {"query": wrong})).json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"tone": "ANGRY"}, "tone"),
        ({"maxHashtags": "5"}, "maxHashtags"),
        ({"paperTitle": None}, "paperTitle"),
        ({"bogus": 1}, "bogus"),
        ({"paperTitle": "Attention \ud800 is all"}, "paperTitle"),
        ({"additionalContext": "nul \x00 byte"}, "additionalContext"),
    ],
)
async def test_variable_mistakes_are_bad_user_input(
    gql: GQL, override: dict[str, Any], field: str
) -> None:
    variables = {"input": {**INPUT, **override}}
    if override.get("paperTitle", "") is None:
        variables["input"].pop("paperTitle")
    body = (await post(gql, {"query": GENERATE, "variables": variables})).json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert (await gql("{ tasks { totalCount } }"))["data"]["tasks"]["totalCount"] == 0


async def test_parse_validation_and_operation_name(gql: GQL) -> None:
    assert codes(await gql("query {")) == ["GRAPHQL_PARSE_FAILED"]
    assert codes(await gql("{ nope }")) == ["GRAPHQL_VALIDATION_FAILED"]
    two = "query A { teams { name } } query B { health { status } }"
    assert codes(await gql(two)) == ["OPERATION_NAME_REQUIRED"]
    named = (await post(gql, {"query": two, "operationName": "B"})).json()
    assert named["data"] == {"health": {"status": "ok"}}


@pytest.mark.parametrize("raw", [b"null", b"42", b"[1]", b'{"query": "\xff"}', b"{", b'"x"'])
async def test_bodies_that_are_not_requests_get_400_with_a_graphql_error(
    gql: GQL, raw: bytes
) -> None:
    response = await post(gql, raw)
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("task", "2024-01-01T00:00:00", "x"),  # no time zone
        encode_cursor("task", "2024-01-01T00:00:00+00:00", "x\x00"),
    ],
)
async def test_bad_task_cursors_are_bad_user_input(gql: GQL, cursor: str) -> None:
    body = await gql("query($a: String) { tasks(after: $a) { totalCount } }", a=cursor)
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "after"


@pytest.mark.parametrize("seq", ["99999999999999999999", "2147483648", "²", "-1"])
async def test_bad_log_cursors_are_bad_user_input(gql: GQL, seq: str) -> None:
    task_id = (await gql(GENERATE, input=INPUT))["data"]["generatePost"]["id"]
    query = "query($id: ID!, $a: String) { agentLogs(taskId: $id, after: $a) { totalCount } }"
    body = await gql(query, id=task_id, a=encode_cursor("log", seq))
    assert codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "accept", ["application/json", "multipart/mixed", "multipart/mixed;deferSpec=20220824"]
)
async def test_subscriptions_over_http_say_use_websocket(gql: GQL, accept: str) -> None:
    body = {"query": "subscription { taskUpdates { id } }"}
    answer = (await post(gql, body, accept=accept)).json()
    assert codes(answer) == ["BAD_REQUEST"] and "WebSocket" in answer["errors"][0]["message"]


async def test_client_errors_log_one_line_and_bugs_a_traceback_with_the_request_id(
    gql: GQL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from db import repository

    async def broken(**_: object) -> None:
        raise RuntimeError("boom")

    caplog.set_level("INFO", logger="graph.errors")
    await gql("{ nope }")
    assert [r.exc_info for r in caplog.records if r.name == "graph.errors"] == [None]
    caplog.clear()
    monkeypatch.setattr(repository, "get_task", broken)
    body = await gql('{ task(id: "x") { id } }')
    request_id = body["errors"][0]["extensions"]["requestId"]
    (record,) = [r for r in caplog.records if r.name == "graph.errors"]
    assert record.exc_info and request_id in record.getMessage()


async def test_production_switches_hide_introspection_suggestions_and_graphiql(
    sqlite_url: str,
) -> None:
    settings = Settings(
        database_url=sqlite_url,
        graphql_introspection=False,
        graphql_field_suggestions=False,
        _env_file=None,
    )
    app = create_app(settings, model_factory=lambda: scripted())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            gql = GQL(client)
            assert set(codes(await gql("{ __schema { types { name } } }"))) == {
                "GRAPHQL_VALIDATION_FAILED"
            }
            body = await gql("{ tema { name } }")
            assert "Did you mean" not in body["errors"][0]["message"]
            page = await client.get("/graphql", headers={"accept": "text/html"})
            assert page.status_code != 200 or "graphiql" not in page.text.lower()
