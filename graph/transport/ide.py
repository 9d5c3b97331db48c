"""GraphiQL without internet access: strawberry's GraphiQL page loads React, GraphiQL
and its explorer plugin from unpkg.com; PostAssist serves vendored copies of those
files (graph/transport/static/ide, refreshed by scripts/vendor_graphiql.py and checked against
the page's Subresource Integrity hashes) under `/ide/` and rewrites the page to use
them. The page itself is vendored too (graphiql.html), so it keeps matching the files
whatever strawberry version is installed; if it is missing, strawberry's own page is
served, from the CDN, and a warning says so.

The vendored page stays strawberry's own (so scripts/vendor_graphiql.py can regenerate
it); `brand` makes it PostAssist's when it is served: the title, the logo, and a first
example operation in the editor (`EXAMPLE_OPERATION`).

`harden` makes it safe to open: the headers typed into its Headers pane (an API key)
stay in the tab and are never written to localStorage (`shouldPersistHeaders: false`),
and nothing in the URL fills the editors (`?q=`, `?variables=`, `?headers=`), so a link
cannot open the page with a mutation or someone else's key ready to run, nor is what
is typed copied into the address bar and the browser's history. Every response also
carries `graph.transport.middleware.SECURITY_HEADERS` (no framing, no sniffing, no Referer).

Also the pages a newcomer opens first (`add_landing_pages`): `/`, the dashboard
(graph.transport.dashboard, served whether GraphiQL is or not: it uses the public API
only, never introspection), and FastAPI's `/docs` and `/redoc` (turned off: their
Swagger and ReDoc pages load from a CDN and document no GraphQL operation), which lead
to GraphiQL at /graphql."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

from graph.transport.dashboard import add_dashboard

logger = logging.getLogger(__name__)

CDN = "https://unpkg.com/"
#: Where the vendored files live (package data), and the URL path they are served at.
IDE_DIR = Path(__file__).parent / "static" / "ide"
IDE_PATH = "/ide"
PAGE = "graphiql.html"
_ASSET = re.compile(r'(?:src|href)="(https://unpkg\.com/[^"]+)"(?:\s+integrity="([^"]+)")?')
#: Where the GraphQL endpoint (and GraphiQL) is served.
GRAPHQL_PATH = "/graphql"
#: Where the dashboard is served (`add_landing_pages`).
DASHBOARD_PATH = "/"
#: The other paths a newcomer tries first; each leads to GraphiQL (`add_landing_pages`).
LANDING_PATHS = ("/docs", "/redoc")
#: What GraphiQL's editor opens with: the README's first two operations ("GraphQL:
#: operations to paste into GraphiQL"), a generation and its live progress.
EXAMPLE_OPERATION = """\
# PostAssist turns a machine-learning paper into a LinkedIn post; agent teams do the
# work and every step streams to you. Run "Generate" (the play button, or Ctrl-Enter,
# then pick it), copy the task's id into "Progress", and run that to watch it live.
# The Docs pane holds the schema; the README has more operations to paste.

mutation Generate {
  generatePost(input: {
    paperTitle: "Attention Is All You Need"
    additionalContext: "Based solely on attention: 28.4 BLEU on WMT 2014 English-to-German."
    targetAudience: "ML engineers"
    tone: PROFESSIONAL
    includeTechnicalDetails: true
    maxHashtags: 5
  }) {
    id status
    teams { name status agents { name status } }
  }
}

subscription Progress {
  taskProgress(taskId: "<id>", afterSeq: 0) {
    seq timestamp kind team agent message progress status isTerminal data
  }
}
"""
#: One edit of strawberry's page: what it changes (named in errors), where, and the text
#: that replaces it (a string, or made from the match).
Edit = tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]]
#: `brand`'s edits of strawberry's page. Each place must be found exactly once, so an
#: upstream page that moved one fails loudly.
_BRANDING: tuple[Edit, ...] = (
    ("title", re.compile(r"<title>[^<]*</title>"), "<title>PostAssist · GraphiQL</title>"),
    (
        "example",
        re.compile(r"const EXAMPLE_QUERY = `[^`]*`;"),
        lambda _: f"const EXAMPLE_QUERY = `{_js_template(EXAMPLE_OPERATION)}`;",
    ),
    (
        "logo",
        re.compile(r"(return React\.createElement\(GraphiQL, \{[^}]*?)\n(\s*)\}\);"),
        lambda m: f'{m[1]}\n{m[2]}}}, React.createElement(GraphiQL.Logo, null, "PostAssist"));',
    ),
)


def _not_from_url(what: str, source: str, initial: str) -> Edit:
    """The edit that starts an editor at `initial` instead of at `source` (a pattern: its
    value from the URL's parameters), named "<what> from the URL"."""
    pattern = re.compile(rf"React\.useState\(\s*{source},?\s*\)")
    return (f"{what} from the URL", pattern, f"React.useState({initial})")


def _not_into_url(what: str, update: str) -> Edit:
    """The edit that removes the page's `updateURL({ <update> });` (a pattern), which
    copies an editor into the address bar, named "<what> into the URL"."""
    return (f"{what} into the URL", re.compile(rf"\n\s*updateURL\(\{{ {update} \}}\);"), "")


#: `harden`'s edits of strawberry's page, checked as `_BRANDING`'s are.
_HARDENING: tuple[Edit, ...] = (
    (
        "persisted headers",
        re.compile("shouldPersistHeaders: true,"),
        "shouldPersistHeaders: false,",
    ),
    _not_from_url("query", r"parameters\.q \|\| EXAMPLE_QUERY", "EXAMPLE_QUERY"),
    _not_from_url("variables", r"parameters\.variables", "undefined"),
    _not_from_url("headers", r"parameters\.headers", "undefined"),
    _not_into_url("query", "q: newQuery"),
    _not_into_url("variables", "variables: newVariables"),
)


@dataclass(frozen=True)
class CdnAsset:
    """One file the page loads from the CDN: `url`, and its `integrity` (sha384 SRI)."""

    url: str
    integrity: str | None

    @property
    def path(self) -> str:
        """The URL's path on the CDN: `react@18.2.0/umd/react.production.min.js`."""
        return self.url.removeprefix(CDN)

    @property
    def package_spec(self) -> str:
        """The npm package and version: `react@18.2.0`, `@graphiql/plugin-explorer@1.0.2`."""
        parts = self.path.split("/")
        return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]

    @property
    def file(self) -> str:
        """The file inside the package: `umd/react.production.min.js`."""
        return self.path.removeprefix(self.package_spec + "/")


def upstream_html() -> str:
    """Strawberry's GraphiQL page as it ships (loading from the CDN)."""
    return get_graphql_ide_html("graphiql")


def cdn_assets(html: str) -> list[CdnAsset]:
    """Every CDN file `html` loads, in page order."""
    return [CdnAsset(url, integrity) for url, integrity in _ASSET.findall(html)]


def localise(html: str) -> str:
    """`html` with every CDN URL pointing at `/ide/` instead (integrity hashes kept)."""
    return html.replace(CDN, f"{IDE_PATH}/")


def _js_template(text: str) -> str:
    """`text` as the body of a JavaScript template literal (`...`)."""
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")


def brand(html: str) -> str:
    """Strawberry's GraphiQL page `html` as PostAssist's: the title "PostAssist ·
    GraphiQL", "PostAssist" as GraphiQL's logo (instead of its link to GitHub), and
    EXAMPLE_OPERATION in the editor instead of the stock welcome text. Raises
    `ValueError` naming the edit whose place the page does not have exactly once."""
    return _edit(html, _BRANDING, "brand")


def harden(html: str) -> str:
    """Strawberry's GraphiQL page `html` with `shouldPersistHeaders: false` and no
    editor filled from the URL, nor copied into it (see the module). Raises
    `ValueError` naming the edit whose place the page does not have exactly once."""
    return _edit(html, _HARDENING, "turn off")


def _edit(html: str, edits: tuple[Edit, ...], purpose: str) -> str:
    """`html` with each of `edits` made; raises `ValueError` naming the first edit whose
    place is not found exactly once (`the <what> to <purpose> is found N times`)."""
    for what, pattern, replacement in edits:
        html, count = pattern.subn(replacement, html)
        if count != 1:
            raise ValueError(f"GraphiQL page: the {what} to {purpose} is found {count} times")
    return html


@cache
def offline_html() -> str:
    """The vendored GraphiQL page (IDE_DIR/graphiql.html: strawberry's page of the
    vendored version, loading every file from `/ide/`), so the page does not change
    with the installed strawberry, branded (`brand`) and hardened (`harden`);
    strawberry's own page, from the CDN, if it is missing (branded and hardened if it
    still can be)."""
    page = IDE_DIR / PAGE
    if page.is_file():
        return harden(brand(page.read_text(encoding="utf-8")))
    logger.warning("GraphiQL loads from %s: %s is missing (run scripts/vendor_graphiql.py)",
                   CDN, page)  # fmt: skip
    html = upstream_html()
    for edit in (brand, harden):
        try:
            html = edit(html)
        except ValueError as exc:
            logger.warning("%s; serving it without that change", exc)
    return html


def mount_ide_files(app: FastAPI) -> None:
    """Serve the vendored files under `/ide/` (immutable: versioned paths)."""
    app.mount(IDE_PATH, StaticFiles(directory=IDE_DIR, check_dir=False), name="ide")


def add_landing_pages(app: FastAPI, *, ide: bool) -> None:
    """Serve the dashboard at DASHBOARD_PATH (`/`, with or without `ide`), and answer GET
    `/docs` and `/redoc` (`LANDING_PATHS`): with `ide` (GraphiQL is served), a 307
    redirect to it at GRAPHQL_PATH; without, a small JSON that says where the API is."""
    add_dashboard(app, DASHBOARD_PATH)

    async def landing(_request: Request) -> Response:
        if ide:
            return RedirectResponse(GRAPHQL_PATH, status_code=307)
        return JSONResponse(
            {
                "service": "PostAssist",
                "graphql": GRAPHQL_PATH,
                "message": f"GraphQL over HTTP POST at {GRAPHQL_PATH}; subscriptions over "
                "WebSocket at the same path (graphql-transport-ws, graphql-ws). GraphiQL "
                "is off (GRAPHQL_INTROSPECTION=false).",
            }
        )

    for path in LANDING_PATHS:
        app.add_api_route(path, landing, methods=["GET", "HEAD"], include_in_schema=False)
