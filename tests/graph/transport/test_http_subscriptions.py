"""Subscriptions over plain HTTP (issue 17 part 4) on a real uvicorn server: unmodified
JavaScript clients (Apollo Client with only its HttpLink over multipart; the
graphql-sse client over SSE) follow a task to its terminal event across a dropped
connection; the same auth, ownership and limits as the WebSocket path; a stream outlives
the HTTP head and body deadlines, carries CORS headers, and a client that goes away
stops its subscription on the server (no follower, no count left)."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from graph.app import create_app
from graph.settings import Settings
from graph.transport.uvicorn_compat import header_deadline_protocol
from tests.agents.runtime.test_execution import gated
from tests.conftest import service_missing
from tests.fakes import scripted
from tests.graph.api.test_hostile_queries import new_key, settings_for
from tests.graph.conftest import free_port, serve
from tests.graph.transport.test_websocket import start_task

pytestmark = pytest.mark.anyio

JS = Path(__file__).resolve().parents[2] / "js"
NODE = shutil.which("node") or "/usr/bin/node"
#: Whether node and the clients (`make js`) are here, decided once at import.
CLIENTS = Path(NODE).exists() and (JS / "node_modules" / "graphql-sse").is_dir()
SSE = {"accept": "text/event-stream"}
PROGRESS = """subscription($id: ID!, $after: Int = 0) {
  taskProgress(taskId: $id, afterSeq: $after) { seq kind isTerminal }
}"""
UPDATES = "subscription { taskUpdates { id status } }"
GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
INPUT = {"paperTitle": "Attention Is All You Need", "additionalContext": "Attention alone."}


async def run_node(script: str, *args: str) -> dict[str, Any]:
    """Run `tests/js/<script>` with node; its one JSON line of output."""
    if not CLIENTS:
        service_missing("node or tests/js/node_modules is missing (make js installs them)")
    process = await asyncio.create_subprocess_exec(
        NODE, script, *args, cwd=JS, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


def assert_gapless(found: dict[str, Any], drop_after: int) -> None:
    """Both phases together are 1..terminal, each seq once, the first cut at the drop."""
    first, second = found["phases"]
    assert first == list(range(1, drop_after + 1))
    assert first + second == list(range(1, second[-1] + 1))
    assert found["terminal"]["isTerminal"] and found["terminal"]["status"] == "COMPLETED"


async def nothing_left(app: FastAPI) -> None:
    """Wait until no stream is counted and no task or status follower runs."""
    services = app.state.services
    async with asyncio.timeout(10):
        while (  # noqa: ASYNC110 - polls the app's counters
            services.connections.open
            or services.event_log.tails.tasks
            or (services.event_log.tails.status is not None)
        ):
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("script", ["apollo_http_follow.mjs", "sse_follow.mjs"])
async def test_js_clients_follow_a_task_across_a_dropped_connection(
    app: FastAPI, live_server: Callable[[str], str], script: str
) -> None:
    task_id = await start_task(live_server)
    found = await run_node(script, f"http://{live_server('/graphql')}", task_id, "5")
    assert_gapless(found, 5)
    await nothing_left(app)


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The events of an SSE response: {"event", "id" (or None), "data" (parsed)}."""
    event: dict[str, Any] = {"id": None}
    async for line in response.aiter_lines():
        if not line:
            if "event" in event:
                yield event
            event = {"id": None}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" and value else value


async def test_sse_ids_are_seqs_and_last_event_id_resumes_after_one(
    live_server: Callable[[str], str],
) -> None:
    task_id = await start_task(live_server)
    url = f"http://{live_server('/graphql')}"
    async with httpx.AsyncClient(timeout=30) as http:
        params = {"query": PROGRESS, "variables": json.dumps({"id": task_id})}
        headers = {**SSE, "last-event-id": "7"}  # an EventSource's reconnection: GET
        async with http.stream("GET", url, params=params, headers=headers) as response:
            assert response.headers["content-type"] == "text/event-stream"
            events = [e async for e in sse_events(response)]
        bad = await http.get(url, params=params, headers={**SSE, "last-event-id": "seven"})
    assert events[-1] == {"event": "complete", "id": None, "data": ""}
    nexts = [e for e in events if e["event"] == "next"]
    seqs = [e["data"]["data"]["taskProgress"]["seq"] for e in nexts]
    assert (
        seqs == list(range(8, seqs[-1] + 1))
        and nexts[-1]["data"]["data"]["taskProgress"]["isTerminal"]
    )
    assert [int(e["id"]) for e in nexts] == seqs
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["errors"][0]["message"]


@asynccontextmanager
async def keyed(sqlite_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """A keyed app over ASGI with two keys' tokens."""
    first, second = await new_key(sqlite_url), await new_key(sqlite_url)
    app = create_app(settings_for(sqlite_url), model_factory=lambda: scripted())
    from asgi_lifespan import LifespanManager

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http, first, second


async def test_sse_needs_a_key_and_sees_only_its_own_tasks(sqlite_url: str) -> None:
    async with keyed(sqlite_url) as (http, owner, other):
        created = await http.post(
            "/graphql", json={"query": GENERATE, "variables": {"input": INPUT}},
            headers={"authorization": f"Bearer {owner}"},
        )  # fmt: skip
        task_id = created.json()["data"]["generatePost"]["id"]
        body = {"query": PROGRESS, "variables": {"id": task_id}}
        anonymous = await http.post("/graphql", json=body, headers=SSE)
        theirs = await http.post(
            "/graphql", json=body, headers={**SSE, "authorization": f"Bearer {other}"}
        )
        multipart = await http.post(
            "/graphql", json=body,
            headers={"accept": 'multipart/mixed;subscriptionSpec="1.0"',
                     "authorization": f"Bearer {other}"},
        )  # fmt: skip
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert theirs.status_code == 200
    next_event = theirs.text.split("\r\n\r\n")[0]
    assert next_event.startswith("event: next\r\ndata: ") and "id:" not in next_event
    errors = json.loads(next_event.split("data: ", 1)[1])["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]
    assert theirs.text.endswith("event: complete\r\ndata: \r\n\r\n")
    assert '"code":"NOT_FOUND"' in multipart.text and multipart.text.endswith("--graphql--\r\n")


async def test_streams_count_against_the_connection_cap_and_the_query_limits_apply(
    sqlite_url: str,
) -> None:
    settings = Settings(database_url=sqlite_url, ws_max_connections_local=1, _env_file=None)
    app = create_app(settings, model_factory=lambda: scripted())
    async with serve(app, free_port()) as host, httpx.AsyncClient(timeout=30) as http:
        url = f"http://{host}/graphql"
        async with http.stream("POST", url, json={"query": UPDATES}, headers=SSE) as held:
            assert held.status_code == 200
            refused = await http.post(url, json={"query": UPDATES}, headers=SSE)
        await nothing_left(app)
        aliases = " ".join(f"a{i}: taskUpdates {{ id }}" for i in range(40))
        limited = await http.post(url, json={"query": f"subscription {{ {aliases} }}"}, headers=SSE)
        again = await http.post(url, json={"query": "subscription { nope }"}, headers=SSE)
    assert refused.status_code == 429
    error = refused.json()["errors"][0]
    assert error["extensions"] == {
        "code": "TOO_MANY_CONNECTIONS", "limit": 1, "setting": "WS_MAX_CONNECTIONS_LOCAL",
    }  # fmt: skip
    assert '"code":"GRAPHQL_VALIDATION_FAILED"' in limited.text, limited.text
    assert '"code":"GRAPHQL_VALIDATION_FAILED"' in again.text  # and the cap was given back


async def test_a_stream_outlives_the_http_deadlines_has_cors_and_ends_with_its_client(
    sqlite_url: str,
) -> None:
    """Deadlines of 0.5 s on the request head and body; a `taskUpdates` stream open for
    1.5 s still gets the next change; closing it and a `taskProgress` stream of a task
    the model holds (RUNNING) ends their followers and gives back their counts."""
    gate = threading.Event()
    settings = Settings(
        database_url=sqlite_url, http_body_timeout_seconds=0.5,
        cors_origins=["http://app.example"], _env_file=None,
    )  # fmt: skip
    app = create_app(settings, model_factory=lambda: gated(gate))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning",
        http=header_deadline_protocol(0.5),
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag
                await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{config.port}/graphql"
        async with httpx.AsyncClient(timeout=30) as http:
            headers = {**SSE, "origin": "http://app.example"}
            async with http.stream(
                "POST", url, json={"query": UPDATES}, headers=headers
            ) as updates:
                assert updates.headers["access-control-allow-origin"] == "http://app.example"
                await asyncio.sleep(1.5)  # past both deadlines
                created = await http.post(
                    url, json={"query": GENERATE, "variables": {"input": INPUT}}
                )
                task_id = created.json()["data"]["generatePost"]["id"]
                changes = sse_events(updates)  # one reader per response, kept open
                change = await anext(changes)
                assert change["data"]["data"]["taskUpdates"]["id"] == task_id
                body = {"query": PROGRESS, "variables": {"id": task_id}}
                async with http.stream("POST", url, json=body, headers=SSE) as progress:
                    events = sse_events(progress)
                    first = await anext(events)
                    assert first["id"] == "1"  # then the model holds the task at the gate
                    services = app.state.services
                    assert task_id in services.event_log.tails.tasks
                    assert sum(services.connections.open.values()) == 2
            await nothing_left(app)  # the client went away mid-task: nothing follows it
    finally:
        gate.set()
        server.should_exit = True
        await serving


async def test_a_stream_ends_once_its_key_is_revoked(sqlite_url: str) -> None:
    """An admin's `taskUpdates` stream (it sees everyone's tasks) whose key is revoked
    ends at its next chunk (`AUTH_CACHE_SECONDS` = 0 here: checked at most every 1 s),
    without the change that chunk carried."""
    from db import keys
    from db.engine import create_engine, create_session_factory

    user = await new_key(sqlite_url)
    engine = create_engine(sqlite_url)
    async with create_session_factory(engine)() as session:
        admin, admin_token = await keys.create_key(session=session, name="admin", admin=True)
    app = create_app(settings_for(sqlite_url), model_factory=lambda: scripted())
    async with serve(app, free_port()) as host, httpx.AsyncClient(timeout=30) as http:
        url = f"http://{host}/graphql"
        headers = {**SSE, "authorization": f"Bearer {admin_token}"}
        async with http.stream("POST", url, json={"query": UPDATES}, headers=headers) as held:
            assert held.status_code == 200
            async with create_session_factory(engine)() as session:
                await keys.revoke_key(session=session, key_id=admin.id)
            await asyncio.sleep(1.2)
            await http.post(
                url, json={"query": GENERATE, "variables": {"input": INPUT}},
                headers={"authorization": f"Bearer {user}"},
            )  # fmt: skip
            async with asyncio.timeout(10):
                events = [e async for e in sse_events(held)]
        await nothing_left(app)
    await engine.dispose()
    assert events == []


async def test_batch_progress_streams_over_multipart_until_every_task_ends(gql: Any) -> None:
    batch = await gql(
        "mutation($i: [GeneratePostInput!]!) { generatePosts(inputs: $i) { batchId } }",
        i=[INPUT, INPUT],
    )
    query = "subscription($b: ID!) { batchProgress(batchId: $b) { id status } }"
    body = {"query": query, "variables": {"b": batch["data"]["generatePosts"][0]["batchId"]}}
    accept = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
    answer = await gql.client.post("/graphql", json=body, headers={"accept": accept})
    parts = [json.loads(p.split("\r\n\r\n", 1)[1]) for p in answer.text.split("\r\n--graphql")
             if p.startswith("\r\nContent-Type")]  # fmt: skip
    tasks = [p["payload"]["data"]["batchProgress"] for p in parts if p]  # {} is a heartbeat
    ended = {t["id"] for t in tasks if t["status"] == "COMPLETED"}
    assert len({t["id"] for t in tasks}) == 2 and len(ended) == 2, tasks
    assert answer.text.endswith("\r\n--graphql--\r\n")
