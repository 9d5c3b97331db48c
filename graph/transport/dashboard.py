"""The dashboard at `/`: a page of plain ES modules and one style sheet
(graph/transport/static/dashboard) driving the public GraphQL API only, over HTTP POST
and graphql-transport-ws, with the vendored graphql-ws client
(`vendor/graphql-ws@<version>`, copied from tests/js/node_modules by `make js`; see
SOURCES.txt there). It never introspects, so it works with GRAPHQL_INTROSPECTION=false.

Every file is read once into memory (`assets`) and served at a versioned path,
`/dashboard/<version>/<file>`, where `<version>` is the first 12 hex digits of the
SHA-256 of all of them: a new build gets new URLs, so the files are cached for a year
(`immutable`), while the page itself is `no-cache`. The page names each file with its
sha384 Subresource Integrity hash (scripts and the style sheet directly, the ES
modules the entry imports through `<link rel="modulepreload" integrity>`), and carries
its own strict Content-Security-Policy (`PAGE_CSP`: no inline script or style, scripts
and connections to this origin only, WebSocket included, Trusted Types required)."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

#: The dashboard's files (package data) and the URL prefix of their versioned paths.
DASHBOARD_DIR = Path(__file__).parent / "static" / "dashboard"
ASSET_PREFIX = "/dashboard"
PAGE = "index.html"
#: What a versioned file is served with: a year, never revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"
#: The page's own CSP (SecurityHeadersMiddleware's is a subset, for pages with inline
#: script). `'self'` covers ws:// and wss:// of this origin (CSP Level 3).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
)
#: Files of the directory that are not served (the page is rendered, the notes are not
#: for browsers).
_NOT_SERVED = {PAGE, "SOURCES.txt"}
_REFERENCE = re.compile(r'(src|href)="((?!/|https?:|data:)[^"]+\.(?:js|css))"')


@dataclass(frozen=True)
class Asset:
    """One served file: its bytes, `integrity` (`sha384-<base64>`) and content type."""

    body: bytes
    integrity: str
    media_type: str


def _media_type(name: str) -> str:
    if name.endswith((".js", ".mjs")):
        return "text/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


@cache
def assets() -> dict[str, Asset]:
    """Every served file of DASHBOARD_DIR by its path there (`js/main.js`), read once."""
    found: dict[str, Asset] = {}
    for path in sorted(DASHBOARD_DIR.rglob("*")):
        name = path.relative_to(DASHBOARD_DIR).as_posix()
        if not path.is_file() or name in _NOT_SERVED:
            continue
        body = path.read_bytes()
        digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
        found[name] = Asset(body, f"sha384-{digest}", _media_type(name))
    return found


@cache
def version() -> str:
    """The 12 hex digits that name this build's files in their URLs."""
    total = hashlib.sha256()
    for name, asset in assets().items():
        total.update(name.encode() + b"\0" + asset.integrity.encode() + b"\0")
    return total.hexdigest()[:12]


def asset_url(name: str) -> str:
    """The versioned URL of the file `name`: `/dashboard/<version>/js/main.js`."""
    return f"{ASSET_PREFIX}/{version()}/{name}"


@cache
def page_html() -> str:
    """DASHBOARD_DIR/index.html with each relative `src`/`href` of a script or style
    sheet made versioned and given its integrity hash, and a `modulepreload` link (with
    its hash) for every ES module under js/ that the entry does not name itself. Raises
    `KeyError` for a file the page names that does not exist."""
    html = (DASHBOARD_DIR / PAGE).read_text(encoding="utf-8")
    named: set[str] = set()

    def versioned(match: re.Match[str]) -> str:
        attribute, name = match[1], match[2]
        named.add(name)
        return f'{attribute}="{asset_url(name)}" integrity="{assets()[name].integrity}"'

    html = _REFERENCE.sub(versioned, html)
    preloads = "".join(
        f'\n    <link rel="modulepreload" href="{asset_url(name)}" integrity="{asset.integrity}">'
        for name, asset in assets().items()
        if name.startswith("js/") and name not in named
    )
    return html.replace("<!-- modulepreload -->", preloads.lstrip())


async def dashboard_page(_request: Request) -> Response:
    """The dashboard page: `no-cache` (its asset URLs change with each build), PAGE_CSP."""
    return Response(
        page_html(),
        media_type="text/html; charset=utf-8",
        headers={"cache-control": "no-cache", "content-security-policy": PAGE_CSP},
    )


async def dashboard_asset(request: Request) -> Response:
    """A versioned file: 200 with IMMUTABLE caching; 404 for another version or a file
    that is not one of `assets()` (nothing outside them is ever read)."""
    asset = assets().get(request.path_params["name"])
    if request.path_params["version"] != version() or asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(asset.body, media_type=asset.media_type, headers={"cache-control": IMMUTABLE})


def add_dashboard(app: FastAPI, path: str = "/") -> None:
    """Serve the dashboard page at `path` and its files under ASSET_PREFIX."""
    app.add_api_route(path, dashboard_page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        f"{ASSET_PREFIX}/{{version}}/{{name:path}}",
        dashboard_asset,
        methods=["GET", "HEAD"],
        include_in_schema=False,
    )
