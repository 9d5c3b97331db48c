"""Issue 13 ("No client can stall it"), rows 5, 6, 9, 12 and 13, tried as a hostile
client would: local mode with a wildcard origin (5) or behind a proxy header (6), the
GraphiQL page framed or reading the URL (9), invisible characters in a title (12), one
principal filling the shared queue and unknown keys each costing a database read (13).
Each test asserts the refusal and its code; none is timed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import ValidationError

from db import keys
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade_to_head
from graph.api.inputs import clean_text
from graph.app import create_app
from graph.security.local_mode import LISTED_ORIGIN, InsecureBindError, made_locally, not_local
from graph.settings import Settings
from graph.transport.ide import harden, offline_html
from tests.fakes import scripted
from tests.graph.conftest import free_port
from tests.processes import console_script

pytestmark = pytest.mark.anyio

TASKS = "{ tasks { totalCount } }"
GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id owner } }"
CANCEL = "mutation($id: ID!) { cancelTask(id: $id) { id status } }"
TASK = "query($id: ID!) { task(id: $id) { paperTitle additionalContext targetAudience } }"
INPUT = {"paperTitle": "Attention Is All You Need"}
APP_ORIGIN = "https://app.example.com"
#: Headers a reverse proxy or a CDN adds; none is in graph.security.local_mode.LOCAL_HEADERS.
PROXY_HEADERS = {
    "Via": "1.1 proxy",
    "X-Forwarded-Proto": "https",
    "True-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "X-Client-IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9",
    "X-Forwarded-Port": "443",
    "X-Original-Forwarded-For": "203.0.113.9",
    "Fastly-Client-IP": "203.0.113.9",
    "X-Cluster-Client-IP": "203.0.113.9",
    "X-Envoy-External-Address": "203.0.113.9",
}
#: What Chromium sends with GraphiQL's fetch (`Origin` the page's own): all local.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
    "Accept": "application/json, multipart/mixed",
    "Accept-Language": "en-GB,en;q=0.9",
    "Content-Type": "application/json",
    "Origin": "http://localhost",
    "Referer": "http://localhost/graphql",
    "Sec-CH-UA": '"Chromium";v="120"',
    "Sec-CH-UA-Mobile": "?0",
    "Sec-CH-UA-Platform": '"Linux"',
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Priority": "u=1, i",
    "Cookie": "csrftoken=abc",
    "X-CSRFToken": "abc",
}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "auth_cache_seconds": 0.0}
    return Settings(**{**values, **overrides}, _env_file=None)


@asynccontextmanager
async def client_of(
    settings: Settings, *, peer: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, called from `peer`; `client.peer(address)` is another caller."""
    app = create_app(settings, model_factory=lambda: scripted())
    async with LifespanManager(app) as manager:

        def from_peer(address: tuple[str, int]) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=address)
            return httpx.AsyncClient(transport=transport, base_url="http://localhost")

        async with from_peer(peer) as client:
            client.peer = from_peer  # type: ignore[attr-defined]
            yield client


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` on a real uvicorn server on a free loopback port; yields `127.0.0.1:<port>`."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag only
                await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def post(
    client: httpx.AsyncClient,
    query: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **variables: Any,
) -> httpx.Response:
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    return await client.post("/graphql", json={"query": query, "variables": variables},
                             headers=sent)  # fmt: skip


def code_of(response: httpx.Response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


async def new_key(database_url: str, name: str = "ci") -> str:
    """A key in `database_url`'s database (brought to head first)."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        _, token = await keys.create_key(session=session, name=name)
    await engine.dispose()
    return token


def unknown_key(n: int) -> str:
    """A well-formed API key that names no key (each costs a database read)."""
    return f"pa_{n:08x}_{'x' * 43}"


def scope_of(headers: dict[str, str], *, client: str = "127.0.0.1") -> dict[str, Any]:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "server": ("127.0.0.1", 8000), "client": (client, 5000),
            "headers": raw}  # fmt: skip


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in scope["headers"]}


# Row 5: a wildcard CORS_ORIGINS in local mode; cross-origin pages and the local principal.


def test_a_wildcard_origin_without_authentication_is_a_settings_error(sqlite_url: str) -> None:
    with pytest.raises(ValidationError, match=r"CORS_ORIGINS=\* lets every web page"):
        settings_for(sqlite_url, cors_origins=["*"])
    with pytest.raises(ValidationError, match=r"CORS_ORIGINS=\*"):
        settings_for(sqlite_url, cors_origins=[APP_ORIGIN, "*"])
    # With authentication that local mode cannot bypass, a wildcard is the operator's call.
    assert settings_for(sqlite_url, cors_origins=["*"], auth_disabled=True).cors_origins == ["*"]
    jwt = {"jwt_issuer": "https://id.example.com/", "jwt_secret": "s" * 32}
    assert settings_for(sqlite_url, cors_origins=["*"], **jwt).cors_origins == ["*"]


def test_serve_with_a_wildcard_origin_in_local_mode_exits_2(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CORS_ORIGINS": "*",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
    }
    for name in ("JWT_ISSUER", "JWT_SECRET", "AUTH_DISABLED"):
        env.pop(name, None)
    done = subprocess.run(
        [console_script(), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "CORS_ORIGINS=* lets every web page call the API" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


async def test_local_mode_refuses_to_start_with_a_wildcard_that_skipped_validation(
    sqlite_url: str,
) -> None:
    unchecked = settings_for(sqlite_url).model_copy(update={"cors_origins": ["*"]})
    with pytest.raises(InsecureBindError, match=r"CORS_ORIGINS=\*"):
        async with client_of(unchecked):
            pass


def test_a_page_of_another_origin_is_never_the_local_principal() -> None:
    assert made_locally(scope_of({"Host": "localhost:8000"}), {"host": "localhost:8000"})
    same = scope_of({"Host": "localhost:8000", "Origin": "http://localhost:8000"})
    assert made_locally(same, headers_of(same))
    # Let through by a wildcard (or anything but a listing by name): not local.
    evil = scope_of({"Host": "localhost:8000", "Origin": "https://evil.example"})
    assert not made_locally(evil, headers_of(evil))
    assert "another origin" in (not_local(evil, headers_of(evil)) or "")
    listed = scope_of({"Host": "localhost:8000", "Origin": APP_ORIGIN})
    assert not made_locally(listed, headers_of(listed))
    listed[LISTED_ORIGIN] = APP_ORIGIN  # what OriginGuard notes for a listed origin
    assert made_locally(listed, headers_of(listed))


async def test_a_listed_origin_is_served_and_an_unlisted_one_refused(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url, cors_origins=[APP_ORIGIN])) as client:
        listed = await post(client, TASKS, headers={"Origin": APP_ORIGIN})
        assert listed.status_code == 200, listed.text
        evil = await post(client, TASKS, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and code_of(evil) == "FORBIDDEN_ORIGIN"


# Row 6: local is an allow-list: loopback peer, loopback Host, only headers a client sends.


async def test_local_mode_refuses_every_proxy_header_over_http(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url)) as client:
        assert (await post(client, TASKS)).status_code == 200
        browser = await post(client, TASKS, headers=BROWSER_HEADERS)
        assert browser.status_code == 200, browser.text
        for name, value in PROXY_HEADERS.items():
            response = await post(client, TASKS, headers={name: value})
            assert response.status_code == 401, (name, response.text)
            assert code_of(response) == "UNAUTHENTICATED", name
            message = response.json()["errors"][0]["message"]
            assert "local mode" in message and f"header {name.lower()}" in message, message
        postman = await post(client, TASKS, headers={"Postman-Token": "5f0c"})
        assert postman.status_code == 200, postman.text
        async with client.peer(("203.0.113.9", 5000)) as outside:  # type: ignore[attr-defined]
            response = await post(outside, TASKS)
            assert response.status_code == 401 and code_of(response) == "UNAUTHENTICATED"


def test_local_takes_a_loopback_host_peer_and_server() -> None:
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        scope = scope_of({"Host": host})
        assert not_local(scope, headers_of(scope)) is None, host
    for host in ("evil.example", "evil.example:8000", "10.0.0.5"):
        scope = scope_of({"Host": host})
        assert "Host" in (not_local(scope, headers_of(scope)) or ""), host
    scope = scope_of({"Host": "localhost"}, client="10.0.0.7")
    assert "non-loopback address" in (not_local(scope, headers_of(scope)) or "")
    scope = {**scope_of({"Host": "localhost"}), "server": ("10.0.0.5", 8000)}
    assert "non-loopback address of the server" in (not_local(scope, headers_of(scope)) or "")
    scope = scope_of({"Host": "localhost", "X-Made-Up-Proxy-Hop": "1"})
    assert "x-made-up-proxy-hop" in (not_local(scope, headers_of(scope)) or "")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_local_mode_refuses_proxy_headers_over_websocket(
    sqlite_url: str, protocol: str
) -> None:
    app = create_app(settings_for(sqlite_url), model_factory=lambda: scripted())
    async with served(app) as address:
        url = f"ws://{address}/graphql"
        async with websockets.connect(url, subprotocols=[protocol]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
        for name in ("Via", "X-Forwarded-Proto", "True-Client-IP", "CF-Connecting-IP"):
            headers = {name: PROXY_HEADERS[name]}
            async with websockets.connect(
                url, subprotocols=[protocol], additional_headers=headers
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init"}))
                if protocol == "graphql-ws":
                    refused = json.loads(await ws.recv())
                    assert refused["type"] == "connection_error", name
                    assert refused["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                if protocol == "graphql-transport-ws":
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


# Row 9: security headers on every page; GraphiQL persists no header and reads no URL.

SECURITY = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_every_page_carries_the_security_headers(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url)) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert_secure(page)
        assets = [line.split('"')[1] for line in page.text.splitlines()
                  if line.strip().startswith(("src=", "href=")) and "/ide/" in line]  # fmt: skip
        assert len(assets) >= 5, assets
        for asset in [*assets, "/ide/graphiql.html"]:
            served_file = await client.get(asset)
            assert served_file.status_code == 200, asset
            assert_secure(served_file)
        for path in ("/", "/docs"):
            assert_secure(await client.get(path))
        assert_secure(await post(client, TASKS))
        # the guards' own answers too: a Host not allowed (400) and a body over the cap (413)
        assert_secure(await client.get("/graphql", headers={"Host": "evil.example"}))
        big = await client.post(
            "/graphql", content=b" " * 2_000_000, headers={"content-type": "application/json"}
        )
        assert big.status_code == 413, big.status_code
        assert_secure(big)


def test_graphiql_persists_no_header_and_fills_nothing_from_the_url() -> None:
    page = offline_html()
    assert "shouldPersistHeaders: false," in page
    assert "shouldPersistHeaders: true" not in page
    for reads_the_url in ("parameters.q", "parameters.variables", "parameters.headers",
                          "updateURL({ q:", "updateURL({ variables:"):  # fmt: skip
        assert reads_the_url not in page, reads_the_url
    assert "React.useState(EXAMPLE_QUERY)" in page
    with pytest.raises(ValueError, match="the persisted headers to turn off is found 0 times"):
        harden("<html>a page of another GraphiQL</html>")


# Row 12: text normalised before the length checks.


def test_clean_text_keeps_what_shows_and_drops_what_does_not() -> None:
    assert clean_text("\u200b" * 5) == ""
    assert clean_text("\u202e\u202d\u2066\u2069\u200f") == ""
    assert clean_text("Attention\u202e Is\u200b All") == "Attention Is All"
    assert clean_text("\x1b[31mred\x1b[0m and \x1b]8;;https://x.example\x07link") == "red and link"
    assert clean_text("bell\x07 and\x00 nul") == "bell and nul"
    assert clean_text("one\r\ntwo\u2028three\tfour") == "one\ntwo\nthree\tfour"
    assert clean_text("  a\n\t b  ", single_line=True) == "a b"
    assert clean_text("e\u0301") == "\u00e9"  # NFC
    assert clean_text("\ufe0f" * 5) == ""  # combining marks alone show nothing
    assert clean_text("hidden\U000e0041\U000e0042 tags") == "hidden tags"
    # Joiners between characters that show, and a flag's tags, are kept.
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with a ZWNJ
    scotland = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    for kept in ("👩\u200d💻", "❤\ufe0f\u200d🔥", persian, scotland):
        assert clean_text(kept) == kept
    assert clean_text("\u200d\u200d\u200dx\u200d") == "x"
    # Controls that break a line keep the words apart: a pasted PDF's page break (\f).
    assert clean_text("end of page\x0cNext page\x0bthen\x85more") == (
        "end of page\nNext page\nthen\nmore"
    )
    assert clean_text("end\x0cnext", single_line=True) == "end next"
    # A format character that shows (the Arabic number sign before digits) is kept.
    assert clean_text("\u0600\u0661\u0662") == "\u0600\u0661\u0662"


async def test_invisible_titles_are_refused_and_controls_stripped(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url)) as client:
        invisible = ("\u200b" * 5, "\u202e" * 5, "\u2060\ufeff\u200b\u200c\u200d")
        for title in (*invisible, "ab\u200b\u200b\u200bc"):
            response = await post(client, GENERATE, input={"paperTitle": title})
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", (title, response.text)
            assert error["extensions"]["field"] == "paperTitle"
        created = await post(
            client,
            GENERATE,
            input={
                "paperTitle": "Attention\u202e Is All\u200b You Need",
                "additionalContext": "\x1b[2J\x1b[31mBLEU 28.4\x1b[0m on WMT\u202e 2014.",
                "targetAudience": "ML\nengineers",
            },
        )
        task_id = created.json()["data"]["generatePost"]["id"]
        task = (await post(client, TASK, id=task_id)).json()["data"]["task"]
        assert task == {
            "paperTitle": "Attention Is All You Need",
            "additionalContext": "BLEU 28.4 on WMT 2014.",
            "targetAudience": "ML engineers",
        }


# Row 13: a cap on each principal's waiting tasks; failed keys throttled per address.


async def test_one_principal_cannot_fill_the_queue(sqlite_url: str) -> None:
    alice, bob = await new_key(sqlite_url, "alice"), await new_key(sqlite_url, "bob")
    # No worker: every task stays PENDING.
    settings = settings_for(
        sqlite_url, run_worker=False, max_queued_per_principal=3, auth_cache_seconds=5.0
    )
    async with client_of(settings) as client:
        answers = await asyncio.gather(
            *(post(client, GENERATE, alice, input=INPUT) for _ in range(6))
        )
        created = [a.json()["data"]["generatePost"]["id"] for a in answers if a.json()["data"]]
        refused = [a.json()["errors"][0] for a in answers if not a.json()["data"]]
        assert len(created) == 3 and len(refused) == 3, [a.text for a in answers]
        for error in refused:
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["limit"] == 3
            assert isinstance(error["extensions"]["retryAfter"], int)
            assert error["extensions"]["retryAfter"] >= 1
            assert "MAX_QUEUED_PER_PRINCIPAL=3" in error["message"]
        # Another principal's place in the queue is its own.
        assert (await post(client, GENERATE, bob, input=INPUT)).json()["data"]["generatePost"]
        # A place frees when one of Alice's tasks leaves the queue.
        cancelled = await post(client, CANCEL, alice, id=created[0])
        assert cancelled.json()["data"]["cancelTask"]["status"] == "CANCELLED"
        again = await post(client, GENERATE, alice, input=INPUT)
        assert again.json()["data"]["generatePost"]["id"], again.text
        full = await post(client, GENERATE, alice, input=INPUT)
        assert code_of(full) == "RATE_LIMITED"


async def test_unknown_keys_are_throttled_per_address(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await new_key(sqlite_url)
    reads: list[str] = []
    find_key = keys.find_key

    async def counted(**kwargs: Any) -> Any:
        reads.append(kwargs["token"])
        return await find_key(**kwargs)

    monkeypatch.setattr(keys, "find_key", counted)
    settings = settings_for(sqlite_url, rate_limit_auth_failures="3/minute", auth_cache_seconds=60)
    async with client_of(settings) as client:
        assert (await post(client, TASKS, token)).status_code == 200  # known from here on
        for n in range(3):
            response = await post(client, TASKS, unknown_key(n))
            assert response.status_code == 401 and code_of(response) == "UNAUTHENTICATED"
        assert len(reads) == 4
        # The fourth unknown key from this address is refused without a database read.
        throttled = await post(client, TASKS, unknown_key(3))
        assert throttled.status_code == 401 and code_of(throttled) == "UNAUTHENTICATED"
        assert "retry in" in throttled.json()["errors"][0]["message"]
        retry_after = throttled.json()["errors"][0]["extensions"]["retryAfter"]
        assert isinstance(retry_after, int) and retry_after >= 1
        assert throttled.headers["retry-after"] == str(retry_after)
        assert len(reads) == 4
        # A key already known still works from there; another address is not throttled.
        assert (await post(client, TASKS, token)).status_code == 200
        async with client.peer(("127.0.0.2", 5000)) as other:  # type: ignore[attr-defined]
            assert (await post(other, TASKS, unknown_key(4))).status_code == 401
            assert (await post(other, TASKS, token)).status_code == 200
        assert len(reads) == 5


async def test_a_key_seen_valid_is_read_again_from_a_throttled_address(sqlite_url: str) -> None:
    # Clients behind one proxy or NAT share an address: one of them spending the budget
    # of unknown keys must not lock out another's real key once its cache entry expires
    # (auth_cache_seconds=0 here: every request reads the key again).
    token = await new_key(sqlite_url)
    async with client_of(settings_for(sqlite_url, rate_limit_auth_failures="2/minute")) as client:
        assert (await post(client, TASKS, token)).status_code == 200
        for n in range(3):
            assert (await post(client, TASKS, unknown_key(n))).status_code == 401
        assert "retry in" in (await post(client, TASKS, unknown_key(3))).text
        assert (await post(client, TASKS, token)).status_code == 200


async def test_a_throttled_address_gets_retry_after_over_websocket(sqlite_url: str) -> None:
    await new_key(sqlite_url)
    settings = settings_for(sqlite_url, rate_limit_auth_failures="2/minute")
    app = create_app(settings, model_factory=lambda: scripted())
    async with served(app) as address, httpx.AsyncClient() as http:
        for n in range(2):
            response = await http.post(
                f"http://{address}/graphql", json={"query": TASKS},
                headers={"Authorization": f"Bearer {unknown_key(n)}"},
            )  # fmt: skip
            assert response.status_code == 401
        async with websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-ws"]) as ws:
            init = {"type": "connection_init", "payload": {"authToken": unknown_key(9)}}
            await ws.send(json.dumps(init))
            refused = json.loads(await ws.recv())
            assert refused["type"] == "connection_error"
            extensions = refused["payload"]["extensions"]
            assert extensions["code"] == "UNAUTHENTICATED"
            assert isinstance(extensions["retryAfter"], int) and 1 <= extensions["retryAfter"] <= 60
