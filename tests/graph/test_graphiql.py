"""GraphiQL works without internet access: the page loads only files this server
serves (byte-identical to the CDN's: their sha384 matches the page's integrity
hashes), and Debian's Chromium, with every host name but 127.0.0.1 made unresolvable,
renders the editor."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import service_missing

pytestmark = pytest.mark.anyio

ASSET = re.compile(r'(?:src|href)="([^"]+\.(?:js|css))"(?:\s+integrity="([^"]+)")?')


async def test_the_page_loads_only_files_served_here(live_server: Callable[[str], str]) -> None:
    base = f"http://{live_server('')}"
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{base}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assets = ASSET.findall(page.text)
        assert len(assets) >= 5, page.text[:500]
        for url, integrity in assets:
            assert url.startswith("/ide/"), url
            served = await http.get(base + url)
            assert served.status_code == 200, url
            digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
            assert integrity == f"sha384-{digest}", url


async def test_chromium_renders_graphiql_offline(live_server: Callable[[str], str]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        service_missing("Debian's chromium is not installed (make install does it)")
    # In a thread: the server runs on this test's event loop.
    browser = await asyncio.to_thread(
        subprocess.run,
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            # Offline: no name resolves but the test server's address.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"http://{live_server('/graphql')}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = browser.stdout
    assert 'class="graphiql-editor"' in dom, dom[:1000]
    assert 'class="graphiql-execute-button"' in dom
