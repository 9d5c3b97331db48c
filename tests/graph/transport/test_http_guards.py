"""The guards in front of GraphQL on a real uvicorn server: Host checks (DNS
rebinding), cross-origin refusal and CORS for HTTP and WebSocket; and the per-principal
mutation rate limit, in memory and in Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import websockets
from fastapi import FastAPI

from graph.app import create_app
from graph.security.rate_limits import MutationRateLimiter, limiter_storage
from graph.settings import Settings
from tests.conftest import REDIS_URL, service_missing
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.anyio

APP_ORIGIN = "https://app.example.com"
EVIL = "http://evil.example"
QUERY = {"query": "{ teams { name } }"}
CANCEL = "mutation($id: ID!) { cancelTask(id: $id) { id } }"


@pytest.fixture
def app(sqlite_url: str, model: ScriptedChatModel) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        cors_origins=[APP_ORIGIN],
        rate_limit_mutations="3/minute",
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: model)


async def test_a_foreign_host_is_refused_over_http_and_websocket(
    live_server: Callable[[str], str],
) -> None:
    url = live_server("/graphql")
    port = url.split(":")[1].split("/")[0]
    async with httpx.AsyncClient() as http:
        ok = await http.post(f"http://{url}", json=QUERY)
        assert ok.status_code == 200 and ok.json()["data"]["teams"]
        for host in (f"localhost:{port}", f"[::1]:{port}"):
            response = await http.post(f"http://{url}", json=QUERY, headers={"Host": host})
            assert response.status_code == 200, host
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, Host and Origin match.
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        response = await http.post(f"http://{url}", json=QUERY, headers=rebound)
        assert response.status_code == 400 and "data" not in response.text
        # Probes come by IP address (Kubernetes) and are served whatever the Host.
        probe = await http.get(f"http://{url.replace('/graphql', '/healthz')}",
                               headers={"Host": "10.1.2.3:8000"})  # fmt: skip
        assert probe.status_code == 200
    with pytest.raises(websockets.InvalidStatus) as refused:
        # The URI's name goes into Host; the socket connects to loopback, as rebinding does.
        async with websockets.connect(
            f"ws://evil.example:{port}/graphql",
            subprotocols=["graphql-transport-ws"],
            host="127.0.0.1",
            port=int(port),
        ):
            pass
    assert refused.value.response.status_code == 400


async def test_cross_origin_requests_need_an_allowed_origin(
    live_server: Callable[[str], str],
) -> None:
    url = live_server("/graphql")
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
    async with httpx.AsyncClient() as http:
        allowed = await http.options(f"http://{url}", headers={"Origin": APP_ORIGIN, **preflight})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = await http.options(f"http://{url}", headers={"Origin": EVIL, **preflight})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers

        posted = await http.post(f"http://{url}", json=QUERY, headers={"Origin": APP_ORIGIN})
        assert posted.status_code == 200
        assert posted.headers["access-control-allow-origin"] == APP_ORIGIN
        # A page elsewhere cannot drive the API, even with a "simple" request.
        forged = await http.post(
            f"http://{url}",
            content=json.dumps(QUERY),
            headers={"Origin": EVIL, "Content-Type": "text/plain"},
        )
        assert forged.status_code == 403
        assert forged.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN_ORIGIN"
        # The same origin (GraphiQL served by this server) is always allowed.
        same = await http.post(f"http://{url}", json=QUERY, headers={"Origin": f"http://{url}"})
        assert same.status_code == 200

    for origin, accepted in ((APP_ORIGIN, True), (EVIL, False)):
        connect = websockets.connect(
            f"ws://{url}", subprotocols=["graphql-transport-ws"], origin=origin
        )
        if accepted:
            async with connect as ws:
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
        else:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect:
                    pass
            assert refused.value.response.status_code == 403


async def test_mutations_are_rate_limited_per_principal(
    live_server: Callable[[str], str],
) -> None:
    url = f"http://{live_server('/graphql')}"
    body = {"query": CANCEL, "variables": {"id": "0" * 32}}
    async with httpx.AsyncClient() as http:
        codes = []
        for _ in range(4):
            errors = (await http.post(url, json=body)).json()["errors"]
            codes.append(errors[0]["extensions"]["code"])
        assert codes == ["NOT_FOUND"] * 3 + ["RATE_LIMITED"]
        limited = errors[0]["extensions"]
        assert isinstance(limited["retryAfter"], int) and 1 <= limited["retryAfter"] <= 60
        # Queries are not counted.
        assert (await http.post(url, json=QUERY)).json()["data"]["teams"]


@pytest.mark.redis
async def test_replicas_share_one_budget_in_redis() -> None:
    principal = f"key:test-{asyncio.get_running_loop().time()}"
    replicas = [MutationRateLimiter("2/minute", limiter_storage(REDIS_URL)) for _ in range(2)]
    try:
        first = await replicas[0].hit(principal)
    except Exception as exc:  # pragma: no cover - depends on the machine
        service_missing(f"Redis is not reachable: {exc}")
    assert first is None
    if not await replicas[0].storage.check():
        service_missing("Redis is not reachable")
    assert await replicas[1].hit(principal) is None
    retry_after = await replicas[0].hit(principal)
    assert retry_after is not None and 1 <= retry_after <= 60
    assert await replicas[1].hit("key:someone-else") is None
