"""The dashboard's files, over ASGI: every file the page names is served here at a
versioned path with its integrity hash and a year's `immutable` caching, the page itself
`no-cache` under its strict CSP, another version or an unknown file is 404, the page
works with GRAPHQL_INTROSPECTION=false (it never introspects), and the vendored
graphql-ws is byte-identical to the one tests/js installs."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.app import create_app
from graph.settings import Settings
from graph.transport.dashboard import DASHBOARD_DIR, IMMUTABLE, PAGE_CSP, assets, version
from tests.fakes import scripted

pytestmark = pytest.mark.anyio

NAMED = re.compile(r'(?:src|href)="(/dashboard/[^"]+)" integrity="(sha384-[^"]+)"')
NPM_GRAPHQL_WS = Path(__file__).parents[2] / "js" / "node_modules" / "graphql-ws"


@pytest.fixture(params=[True, False], ids=["graphiql", "no-introspection"])
async def http(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=sqlite_url, graphql_introspection=request.param, _env_file=None
    )
    app = create_app(settings, model_factory=scripted)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def test_every_file_is_versioned_hashed_and_cached(http: httpx.AsyncClient) -> None:
    page = await http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert "script-src 'self'" in PAGE_CSP and "'unsafe-inline'" not in PAGE_CSP
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    named = NAMED.findall(page.text)
    js_modules = {name for name in assets() if name.startswith("js/")}
    assert {url.split("/", 3)[3] for url, _ in named} >= js_modules | {"dashboard.css"}
    for url, integrity in named:
        assert url.startswith(f"/dashboard/{version()}/"), url
        served = await http.get(url)
        assert served.status_code == 200, url
        assert served.headers["cache-control"] == IMMUTABLE
        digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
        assert integrity == f"sha384-{digest}", url
        if url.endswith(".js"):
            assert served.headers["content-type"].startswith("text/javascript")


async def test_other_versions_and_files_are_not_found(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"/dashboard/{version()}/js/main.js")).status_code == 200
    for path in (
        "/dashboard/000000000000/js/main.js",
        f"/dashboard/{version()}/index.html",
        f"/dashboard/{version()}/SOURCES.txt",
        f"/dashboard/{version()}/js/missing.js",
    ):
        assert (await http.get(path)).status_code == 404, path


def test_the_vendored_graphql_ws_is_the_npm_one() -> None:
    if not NPM_GRAPHQL_WS.is_dir():
        pytest.fail(f"{NPM_GRAPHQL_WS} is missing: run `make js`")
    import json

    npm_version = json.loads((NPM_GRAPHQL_WS / "package.json").read_text())["version"]
    vendored = DASHBOARD_DIR / "vendor" / f"graphql-ws@{npm_version}" / "umd" / "graphql-ws.min.js"
    assert vendored.read_bytes() == (NPM_GRAPHQL_WS / "umd" / "graphql-ws.min.js").read_bytes()
    assert f"vendor/graphql-ws@{npm_version}/" in (DASHBOARD_DIR / "index.html").read_text()
