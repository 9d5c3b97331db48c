"""Queries a hostile client sends (issue 13, rows 2, 3, 4, 7 and 10): introspection inside
the cost and depth budget and capped per document, off by default when authentication
is required; `isOneOf` on a wrapped type; repeated errors logged once; `queuePosition`
from one read of the queue per request; cursors out of the datetime range; one generic
JWT error. Each test asserts the refusal and its `extensions.code`, never a time."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from graphql import GraphQLError, get_introspection_query

from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.api.pagination import encode_cursor
from graph.app import create_app
from graph.errors import log_errors
from graph.settings import Settings
from tests.fakes import scripted
from tests.graph.conftest import GQL

pytestmark = pytest.mark.anyio

#: The introspection query GraphiQL sends (graphql-js's, with the options GraphiQL sets:
#: nine levels of `ofType`, as graphql-core's).
GRAPHIQL_INTROSPECTION = get_introspection_query(
    descriptions=True, input_value_deprecation=True, schema_description=True
)
#: A large fragment on `__Schema`, as the attack of row 2 spread under 30 aliases.
BIG_FRAGMENT = (
    "fragment S on __Schema { types { name kind description fields { name description "
    "args { name type { name kind ofType { name kind } } } type { name kind ofType { name "
    "kind ofType { name kind } } } } inputFields { name } enumValues { name } } }"
)
GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def limits(body: dict[str, Any]) -> list[str | None]:
    return [e["extensions"].get("limit") for e in body.get("errors", [])]


@pytest.fixture
def app(sqlite_url: str) -> FastAPI:
    """The app of `gql` and `live_server`, in local mode, with no worker: tasks stay
    PENDING, so they keep their places in the queue."""
    return create_app(settings_for(sqlite_url, run_worker=False), model_factory=scripted)


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "rate_limit_mutations": "10000/minute",
        "auth_cache_seconds": 0.0,
    }
    return Settings(**{**values, **overrides}, _env_file=None)


@asynccontextmanager
async def client_of(settings: Settings, token: str | None = None) -> AsyncIterator[GQL]:
    """GQL over the ASGI app of `settings`, sending `token` as a Bearer token."""
    app = create_app(settings, model_factory=lambda: scripted())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", headers=headers
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield GQL(client)


async def new_key(database_url: str) -> str:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        _, token = await keys.create_key(session=session, name="hostile")
    await engine.dispose()
    return token


# Row 2: introspection inside the cost and depth budget, capped, off when auth is required.


async def test_graphiql_introspection_answers_in_local_mode(gql: GQL) -> None:
    body = await gql(GRAPHIQL_INTROSPECTION)
    assert "errors" not in body, body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_thirty_aliases_of_schema_are_refused(gql: GQL) -> None:
    aliases = " ".join(f"a{i}: __schema {{ ...S }}" for i in range(30))
    body = await gql(f"{{ {aliases} }} {BIG_FRAGMENT}")
    assert body.get("data") is None, "the introspection ran"
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert limits(body) == ["introspection"]
    two = await gql('{ a: __schema { queryType { name } } b: __type(name: "Task") { name } }')
    assert "errors" not in two, two


async def test_introspection_counts_in_the_cost(gql: GQL) -> None:
    ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
    field = f"name description type {{ {ref} }} args {{ name defaultValue type {{ {ref} }} }}"
    query = "{ __schema { types { fields { type { fields { FIELD } } } } } }"
    body = await gql(query.replace("FIELD", field))
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert limits(body) == ["cost"]


async def test_the_cost_of_an_introspection_expands_its_fragments(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url, max_query_cost=500)) as gql:
        body = await gql(GRAPHIQL_INTROSPECTION)
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
        assert limits(body) == ["cost"]
        assert "errors" not in await gql("{ __schema { queryType { name } } }")


async def test_introspection_counts_in_the_depth(gql: GQL) -> None:
    chain = "ofType { " * 12 + "name" + " }" * 12
    body = await gql(f'{{ __type(name: "Task") {{ fields {{ type {{ {chain} }} }} }} }}')
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert limits(body) == ["depth"]
    # graphql-core's own rule: `fields` (or `interfaces`, ...) nested three times.
    nested = "fields { type { " * 3 + "name" + " } }" * 3
    body = await gql(f"{{ __schema {{ types {{ {nested} }} }} }}")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"] and limits(body) == ["depth"], body


async def test_introspection_is_off_by_default_when_auth_is_required(sqlite_url: str) -> None:
    token = await new_key(sqlite_url)
    async with client_of(settings_for(sqlite_url), token) as gql:
        assert gql.client.app.state.services.auth.mode == "required"  # type: ignore[attr-defined]
        for query in (
            GRAPHIQL_INTROSPECTION,
            '{ __type(name: "Task") { name } }',
            "{ teams { name } ...F } fragment F on Query { __schema { queryType { name } } }",
        ):
            body = await gql(query)
            assert body.get("data") is None and codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
            assert limits(body) == ["introspection"], body
        assert (await gql("{ __typename teams { name } }"))["data"]["__typename"] == "Query"
    settings = settings_for(sqlite_url, graphql_introspection_with_auth=True)
    async with client_of(settings, token) as gql:
        assert "errors" not in await gql(GRAPHIQL_INTROSPECTION)


# Row 3: isOneOf on a wrapped type; repeated identical errors logged once.


async def test_is_one_of_on_a_wrapped_type_is_null_not_a_crash(gql: GQL) -> None:
    query = (
        '{ __type(name: "Task") { isOneOf fields { type { isOneOf ofType { isOneOf '
        "ofType { isOneOf } } } } } }"
    )
    body = await gql(query)
    assert "errors" not in body, body
    task = body["data"]["__type"]
    assert task["isOneOf"] is False
    assert {f["type"]["isOneOf"] for f in task["fields"]} <= {None, False}
    assert any(f["type"]["ofType"] for f in task["fields"])


async def test_the_same_bug_many_times_in_one_response_is_logged_once(
    gql: GQL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from db import repository

    async def broken(**_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(repository, "get_task", broken)
    caplog.set_level("INFO", logger="graph.errors")
    aliases = " ".join(f'a{i}: task(id: "x{i}") {{ id }}' for i in range(20))
    body = await gql(f"{{ {aliases} }}")
    assert codes(body) == ["INTERNAL_SERVER_ERROR"] * 20
    request_ids = {e["extensions"]["requestId"] for e in body["errors"]}
    records = [r for r in caplog.records if r.name == "graph.errors"]
    assert len(records) == 1 and records[0].exc_info, [r.getMessage() for r in records]
    assert len(request_ids) == 1 and request_ids.pop() in records[0].getMessage()
    assert "20" in records[0].getMessage()


def test_the_same_client_error_many_times_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="graph.errors")
    errors = [GraphQLError("no", extensions={"code": "NOT_FOUND"}) for _ in range(50)]
    log_errors([*errors, GraphQLError("other", extensions={"code": "NOT_FOUND"})])
    lines = [r.getMessage() for r in caplog.records if r.name == "graph.errors"]
    assert len(lines) == 2 and "50" in lines[0], lines


# Row 4: queuePosition from one read of the queue per request, costed.


async def test_queue_positions_come_from_one_read_of_the_queue(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url, run_worker=False)) as gql:
        ids = [(await gql(GENERATE, input=INPUT))["data"]["generatePost"]["id"] for _ in range(5)]
        client = gql.client.app.state.services.tasks.client  # type: ignore[attr-defined]
        reads = 0
        original = client.list_queued_workflows_async

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await original(*args, **kwargs)

        client.list_queued_workflows_async = counted
        aliases = " ".join(
            f"a{i}: tasks(first: 100) {{ edges {{ node {{ id queuePosition }} }} }}"
            for i in range(30)
        )
        body = await gql(f"{{ {aliases} }} ")
        assert "errors" not in body, body
        assert reads == 1
        for alias in body["data"].values():
            positions = {e["node"]["id"]: e["node"]["queuePosition"] for e in alias["edges"]}
            assert positions == {task_id: n for n, task_id in enumerate(ids, start=1)}
        # A second request reads the queue again (nothing is cached across requests).
        one = await gql("query($id: ID!) { task(id: $id) { queuePosition } }", id=ids[0])
        assert one["data"]["task"]["queuePosition"] == 1 and reads == 2


async def test_each_mutation_and_each_websocket_operation_reads_the_queue_afresh(
    app: FastAPI, live_server: Callable[[str], str]
) -> None:
    """A mutation's tasks are queued after any earlier read, and a WebSocket keeps one
    context for all its operations (a subscription's events take the mutation's path:
    one read each): neither may answer from a read made before."""
    two = (
        "mutation($input: GeneratePostInput!) { a: generatePost(input: $input) "
        "{ id queuePosition } b: generatePost(input: $input) { id queuePosition } }"
    )
    async with httpx.AsyncClient() as http:
        url = f"http://{live_server('/graphql')}"
        body = (await http.post(url, json={"query": two, "variables": {"input": INPUT}})).json()
    assert [body["data"][k]["queuePosition"] for k in "ab"] == [1, 2], body
    positions = "{ tasks { edges { node { queuePosition } } } }"
    async with websockets.connect(
        f"ws://{live_server('/graphql')}", subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        async def operation(op_id: str, query: str) -> dict[str, Any]:
            payload = {"query": query, "variables": {"input": INPUT}}
            await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("id") == op_id and message["type"] == "next":
                        return message["payload"]

        def places(body: dict[str, Any]) -> list[int]:
            return sorted(e["node"]["queuePosition"] for e in body["data"]["tasks"]["edges"])

        assert places(await operation("q1", positions)) == [1, 2]
        created = await operation("m", GENERATE)
        assert "errors" not in created, created
        assert places(await operation("q2", positions)) == [1, 2, 3]


async def test_queue_position_costs_one_read_of_the_queue(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url, max_query_cost=100)) as gql:
        cheap = await gql("{ tasks(first: 1) { edges { node { id } } } }")
        assert "errors" not in cheap, cheap
        body = await gql("{ tasks(first: 1) { edges { node { queuePosition } } } }")
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"] and limits(body) == ["cost"], body


# Row 7: cursors out of the datetime range.


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_task_cursors_out_of_range_are_bad_user_input(gql: GQL, when: str) -> None:
    query = "query($a: String) { tasks(after: $a) { totalCount edges { cursor } } }"
    body = await gql(query, a=encode_cursor("task", when, "x"))
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == "after"


# Row 10: one generic JWT error to the client, the detail in the server log.


async def test_jwt_errors_are_one_generic_message(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "public.pem"
    pem.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    issuer = "https://id.example.com/"
    settings = settings_for(sqlite_url, jwt_issuer=issuer, jwt_public_key_file=pem)
    now = int(time.time())
    claims = {"iss": issuer, "sub": "x", "exp": now + 60}
    es256 = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    expired = jwt.encode({**claims, "exp": now - 3600}, rsa_key, algorithm="RS256")
    caplog.set_level("INFO")
    messages = set()
    async with client_of(settings) as gql:
        for token in (es256, expired, "not.a.jwt", jwt.encode({**claims, "sub": " "}, rsa_key,
                      algorithm="RS256")):  # fmt: skip
            response = await gql.client.post(
                "/graphql",
                json={"query": "{ teams { name } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            messages.add(error["message"])
        good = jwt.encode(claims, rsa_key, algorithm="RS256")
        ok = await gql.client.post(
            "/graphql",
            json={"query": "{ teams { name } }"},
            headers={"Authorization": f"Bearer {good}"},
        )
        assert ok.status_code == 200
    assert messages == {"the JWT is not valid"}
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "Invalid Key type" in logged and "Signature has expired" in logged
    assert "generator object" not in next(iter(messages))
