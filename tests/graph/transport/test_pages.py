"""The pages a newcomer opens, on a real uvicorn server: `/` is the dashboard (with
GraphiQL on or off; its files: tests/graph/dashboard), `/docs` and `/redoc` lead to
GraphiQL at /graphql, whose page is PostAssist's (title, logo, example operation) and
loads nothing from another origin; FastAPI's Swagger, ReDoc and OpenAPI pages are off;
with GraphiQL off, `/docs` and `/redoc` answer a small JSON that points at /graphql."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.app import create_app
from graph.settings import Settings
from graph.transport.ide import EXAMPLE_OPERATION, IDE_DIR, PAGE, brand, harden, offline_html
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.anyio

LANDING = ("/docs", "/redoc")
DASHBOARD_TITLE = "<title>PostAssist · Dashboard</title>"


class Links(HTMLParser):
    """Every `src` and `href` attribute of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def links_of(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


def same_origin(url: str) -> bool:
    """A path on this server, or inline data; never another host (`//host`, `https:`)."""
    return url.startswith("data:") or (url.startswith("/") and not url.startswith("//"))


@pytest.mark.parametrize("path", LANDING)
async def test_landing_paths_lead_to_graphiql_and_load_nothing_from_outside(
    live_server: Callable[[str], str], path: str
) -> None:
    base = f"http://{live_server('')}"
    async with httpx.AsyncClient(follow_redirects=True) as http:
        page = await http.get(base + path, headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:300]
        assert [r.status_code for r in page.history] == [307]
        assert page.url == f"{base}/graphql"
        assert page.headers["content-type"].startswith("text/html")
        urls = links_of(page.text)
        assert len(urls) >= 6, urls  # the icon, 4 scripts, 2 style sheets
        assert all(same_origin(url) for url in urls), urls
        for url in urls:
            if not url.startswith("data:"):
                assert (await http.get(base + url)).status_code == 200, url
        assert "<title>PostAssist · GraphiQL</title>" in page.text
        assert "mutation Generate {" in page.text and "subscription Progress {" in page.text
        assert "Strawberry GraphiQL" not in page.text
        assert "Welcome to GraphiQL" not in page.text


async def test_the_root_is_the_dashboard(live_server: Callable[[str], str]) -> None:
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://{live_server('/')}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and not page.history
    assert page.headers["content-type"].startswith("text/html")
    assert DASHBOARD_TITLE in page.text
    urls = links_of(page.text)
    assert len(urls) >= 10, urls  # the icon, the style sheet, the scripts and modules
    assert all(same_origin(url) or url.startswith("#") for url in urls), urls


async def test_fastapi_docs_are_off(live_server: Callable[[str], str]) -> None:
    async with httpx.AsyncClient() as http:
        schema = await http.get(f"http://{live_server('/openapi.json')}")
    assert schema.status_code == 404


async def test_without_graphiql_the_landing_paths_point_at_graphql(
    sqlite_url: str, model: ScriptedChatModel
) -> None:
    settings = Settings(database_url=sqlite_url, graphql_introspection=False, _env_file=None)
    app = create_app(settings, model_factory=lambda: model)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            for path in LANDING:
                answer = await http.get(path, headers={"Accept": "text/html"})
                assert answer.status_code == 200, (path, answer.text)
                body = answer.json()
                assert body["service"] == "PostAssist" and body["graphql"] == "/graphql"
                assert "GRAPHQL_INTROSPECTION=false" in body["message"]
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 404  # no GraphiQL page to redirect to
            root = await http.get("/", headers={"Accept": "text/html"})
            assert root.status_code == 200 and DASHBOARD_TITLE in root.text  # no introspection


def test_the_vendored_page_is_branded_when_served() -> None:
    vendored = (IDE_DIR / PAGE).read_text(encoding="utf-8")
    assert "Strawberry GraphiQL" in vendored  # kept as strawberry ships it
    served = offline_html()
    assert served == harden(brand(vendored))  # harden: see test_hostile_http
    assert 'React.createElement(GraphiQL.Logo, null, "PostAssist")' in served
    assert "const EXAMPLE_QUERY = `" + EXAMPLE_OPERATION + "`;" in served
    assert "generatePost(input:" in EXAMPLE_OPERATION and "taskProgress(" in EXAMPLE_OPERATION


def test_branding_a_page_it_does_not_fit_fails_loudly() -> None:
    with pytest.raises(ValueError, match="the example to brand is found 0 times"):
        brand("<title>GraphiQL</title> no example, no GraphiQL element")
