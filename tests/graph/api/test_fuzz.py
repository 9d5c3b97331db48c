"""Property-based fuzzing of the GraphQL API (hypothesis-graphql) through the ASGI app:
valid and invalid operations generated from schema.graphql, and random documents with
random variables. No response may be a 5xx, an INTERNAL_SERVER_ERROR, a traceback or
SQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema
from starlette.testclient import TestClient

SCHEMA = (Path(__file__).resolve().parents[3] / "schema.graphql").read_text()
#: Mutations that start work; fuzzed in their own, smaller test.
STARTERS = ("generatePost", "verifyPost")
QUERY_FIELDS = ["task", "tasks", "agentLogs", "teams", "health"]
OTHER_MUTATIONS = ["cancelTask", "retryTask"]
LEAKS = re.compile(r"INTERNAL_SERVER_ERROR|Traceback|File \"|sqlalchemy|sqlite3|SELECT |asyncpg")
SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RUN: dict[str, int] = {"cases": 0}
#: hypothesis-graphql 0.13 draws from `random` inside its strategies (its issue, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module")


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # From a loopback peer (TestClient's default is "testclient"), so local mode serves it.
    with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def check(client: TestClient, body: object) -> None:
    response = client.post("/graphql", json=body)
    RUN["cases"] += 1
    assert response.status_code < 500, (body, response.text[:500])
    # Every answer is GraphQL-shaped JSON (a plain-text 400 would mean the request never
    # reached GraphQL, e.g. a refused Host).
    assert response.headers["content-type"].startswith("application/json"), response.text
    # A leak is internal text the client did not send: an error may echo the request's
    # own strings (an unknown operationName), and hypothesis draws strings from this
    # project's source ("asyncpg" from db/engine.py).
    sent = json.dumps(body, ensure_ascii=False)
    leaks = [m.group(0) for m in LEAKS.finditer(response.text) if m.group(0) not in sent]
    assert not leaks, (leaks, body, response.text[:500])
    if response.status_code == 200:
        assert "data" in response.json() or "errors" in response.json()


def operations(mode: Mode, fields: list[str]) -> st.SearchStrategy[str]:
    return from_schema(SCHEMA, fields=fields, mode=mode)  # type: ignore[return-value]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(SETTINGS, max_examples=1000)
@given(query=operations(Mode.POSITIVE, QUERY_FIELDS + OTHER_MUTATIONS))
def test_fuzz_valid_operations(client: TestClient, query: str) -> None:
    check(client, {"query": query})


@settings(SETTINGS, max_examples=900)
@given(query=operations(Mode.NEGATIVE, QUERY_FIELDS + OTHER_MUTATIONS + list(STARTERS)))
def test_fuzz_invalid_operations(client: TestClient, query: str) -> None:
    check(client, {"query": query})


@settings(SETTINGS, max_examples=150)
@given(query=operations(Mode.POSITIVE, list(STARTERS)))
def test_fuzz_valid_generations(client: TestClient, query: str) -> None:
    check(client, {"query": query})


VARIABLE_QUERIES = [
    "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }",
    "query($id: ID!, $a: String, $n: Int!) { agentLogs(taskId: $id, after: $a, first: $n)"
    " { totalCount } }",
    "query($a: String, $s: TaskStatus, $n: Int!) { tasks(first: $n, after: $a, status: $s)"
    " { totalCount } }",
    "mutation($id: ID!) { cancelTask(id: $id) { id } }",
]


@settings(SETTINGS, max_examples=400)
@given(
    query=st.sampled_from(VARIABLE_QUERIES) | st.text(max_size=200),
    variables=st.dictionaries(st.sampled_from(["input", "id", "a", "s", "n"]), JSON) | JSON,
    operation=st.none() | st.text(max_size=10) | JSON,
)
def test_fuzz_variables_and_bodies(
    client: TestClient, query: str, variables: object, operation: object
) -> None:
    check(client, {"query": query, "variables": variables, "operationName": operation})


def test_zz_fuzz_ran_enough_cases() -> None:
    """Runs after the fuzz tests of this module (pytest keeps file order)."""
    print(f"\nGraphQL fuzz: {RUN['cases']} operations, no 5xx, no internal error, no leak")
    if RUN["cases"]:
        assert RUN["cases"] >= 2000
