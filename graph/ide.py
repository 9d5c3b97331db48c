"""GraphiQL without internet access: strawberry's GraphiQL page loads React, GraphiQL
and its explorer plugin from unpkg.com; PostAssist serves vendored copies of those
files (graph/static/ide, refreshed by scripts/vendor_graphiql.py and checked against
the page's Subresource Integrity hashes) under `/ide/` and rewrites the page to use
them. The page itself is vendored too (graphiql.html), so it keeps matching the files
whatever strawberry version is installed; if it is missing, strawberry's own page is
served, from the CDN, and a warning says so."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

logger = logging.getLogger(__name__)

CDN = "https://unpkg.com/"
#: Where the vendored files live (package data), and the URL path they are served at.
IDE_DIR = Path(__file__).parent / "static" / "ide"
IDE_PATH = "/ide"
PAGE = "graphiql.html"
_ASSET = re.compile(r'(?:src|href)="(https://unpkg\.com/[^"]+)"(?:\s+integrity="([^"]+)")?')


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


@cache
def offline_html() -> str:
    """The vendored GraphiQL page (IDE_DIR/graphiql.html: strawberry's page of the
    vendored version, loading every file from `/ide/`), so the page does not change
    with the installed strawberry; strawberry's own page, from the CDN, if it is
    missing."""
    page = IDE_DIR / PAGE
    if page.is_file():
        return page.read_text(encoding="utf-8")
    logger.warning("GraphiQL loads from %s: %s is missing (run scripts/vendor_graphiql.py)",
                   CDN, page)  # fmt: skip
    return upstream_html()


def mount_ide_files(app: FastAPI) -> None:
    """Serve the vendored files under `/ide/` (immutable: versioned paths)."""
    app.mount(IDE_PATH, StaticFiles(directory=IDE_DIR, check_dir=False), name="ide")
