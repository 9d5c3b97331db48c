"""GraphiQL works without internet access: the page loads only files this server
serves (byte-identical to the CDN's: their sha384 matches the page's integrity
hashes), and Debian's Chromium, with every host name but 127.0.0.1 made unresolvable,
opens `/graphql`, and renders PostAssist's page: its title and logo, and the
example operation (a generatePost mutation, a taskProgress subscription) in the
editor."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from html import unescape

import httpx
import pytest

from tests.conftest import service_missing

pytestmark = pytest.mark.anyio

ASSET = re.compile(r'(?:src|href)="([^"]+\.(?:js|css))"(?:\s+integrity="([^"]+)")?')
#: One rendered line of a CodeMirror editor.
EDITOR_LINE = re.compile(r'<pre class=" CodeMirror-line " role="presentation">(.*?)</pre>')


def editor_lines(dom: str) -> list[str]:
    """The text of the query editor's rendered lines (the first editor on the page)."""
    editor = dom[dom.index('class="graphiql-query-editor"') :]
    return [unescape(re.sub(r"<[^>]+>", "", line)) for line in EDITOR_LINE.findall(editor)]


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
            "--window-size=1280,1600",  # CodeMirror renders the lines in view only
            "--dump-dom",
            f"http://{live_server('/graphql')}",  # `/` is the dashboard (tests/graph/dashboard)
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = browser.stdout
    assert 'class="graphiql-editor"' in dom, dom[:1000]
    # With two operations in the editor, the execute button opens a menu to pick one.
    assert re.search(r'class="[^"]*\bgraphiql-execute-button"', dom)
    assert "<title>PostAssist · GraphiQL</title>" in dom
    assert 'class="graphiql-logo">PostAssist</div>' in dom
    lines = editor_lines(dom)
    assert lines[0].startswith("# PostAssist turns a machine-learning paper"), lines[:3]
    for expected in ("mutation Generate {", "  generatePost(input: {", "subscription Progress {"):
        assert expected in lines, (expected, lines)
    assert any(line.startswith("  taskProgress(taskId: ") for line in lines), lines
    assert not any("Welcome to GraphiQL" in line for line in lines)
