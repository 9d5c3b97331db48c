"""Real sources through the service: the settings that configure them, and a generation
from an arXiv id over GraphQL whose notes carry the fetched paper (`researchNotes.paper`).

The arXiv API is `tests/source_server.py` on a loopback port; `no_internet` makes any
other connection fail.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from agents.teams.sources import ARXIV_API_URL, SourcesConfig
from graph.app import create_app
from graph.settings import Settings
from tests.fakes import scripted
from tests.graph.conftest import GQL
from tests.source_server import SourceServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("offline")]

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id } }"
TASK = """
query($id: ID!) {
  task(id: $id) {
    status paperTitle
    researchNotes {
      sourceNote sources metrics
      paper { arxivId title authors abstract published updated primaryCategory url pdfUrl }
    }
  }
  agentLogs(taskId: $id, first: 100) { edges { node { kind message data } } }
}"""


@pytest.fixture
def app(sqlite_url: str, server: SourceServer) -> FastAPI:
    settings = Settings(
        database_url=sqlite_url,
        follow_poll_seconds=0.5,
        rate_limit_mutations="10000/minute",
        sources_enabled=True,
        arxiv_api_url=server.arxiv_url,
        sources_timeout_seconds=2,
        _env_file=None,
    )
    return create_app(settings, model_factory=lambda: scripted(verification_order=["FINISH"]))


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_sources_settings_reach_the_workers_runs() -> None:
    assert Settings.model_fields["sources_enabled"].default is True  # on unless turned off
    config = (
        settings(
            sources_enabled=True,
            tavily_api_key="tvly-secret",
            tavily_api_url="http://127.0.0.1:9/tavily",
            sources_timeout_seconds=3,
        )
        .worker_config()
        .sources
    )
    assert config == SourcesConfig(
        enabled=True,
        arxiv_api_url=ARXIV_API_URL,
        tavily_api_key="tvly-secret",
        tavily_api_url="http://127.0.0.1:9/tavily",
        timeout=3.0,
    )
    assert "tvly-secret" not in repr(config)
    assert settings().sources_config().tavily_api_key is None


def test_the_test_suite_fetches_nothing_by_default() -> None:
    # tests/conftest.py sets SOURCES_ENABLED=false for every test (and the servers they start)
    assert settings().sources_config().enabled is False


@pytest.mark.parametrize("url", ["", "export.arxiv.org/api", "ftp://arxiv.org"])
def test_a_bad_arxiv_url_is_a_settings_error(url: str) -> None:
    with pytest.raises(ValidationError, match="arxiv_api_url"):
        settings(arxiv_api_url=url)


@pytest.mark.parametrize("title", ["1706.03762", "arXiv:1706.03762v7", "arxiv.org/abs/1706.03762"])
async def test_a_generation_from_an_arxiv_id_shows_the_fetched_paper(
    gql: GQL, server: SourceServer, title: str
) -> None:
    body = await gql(GENERATE, input={"paperTitle": title})
    assert "errors" not in body, body
    task_id = body["data"]["generatePost"]["id"]
    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
    data = (await gql(TASK, id=task_id))["data"]
    task = data["task"]
    assert task["paperTitle"] == title  # as the client sent it
    paper = task["researchNotes"]["paper"]
    assert paper["title"] == "Attention Is All You Need" and paper["arxivId"] == "1706.03762v7"
    assert len(paper["authors"]) == 8 and paper["primaryCategory"] == "cs.CL"
    assert paper["published"] == "2017-06-12T17:57:34+00:00"
    assert paper["url"].startswith("https://arxiv.org/abs/1706.03762")
    assert paper["pdfUrl"] == "https://arxiv.org/pdf/1706.03762v7"
    assert "41.8" in task["researchNotes"]["metrics"]
    kinds = [s["kind"] for s in task["researchNotes"]["sources"]]
    assert kinds == ["request", "arxiv"]
    logs = [e["node"] for e in data["agentLogs"]["edges"]]
    calls = [e for e in logs if e["kind"] == "TOOL_CALL" and e["message"] == "fetch_arxiv_paper"]
    assert [c["data"]["args"]["api_url"] for c in calls] == [server.arxiv_url]
    assert len(server.asked("/arxiv/query")) == 1


async def test_a_failing_arxiv_still_completes_and_says_why(gql: GQL, server: SourceServer) -> None:
    server.fail["1706.03762"] = 503
    body = await gql(GENERATE, input={"paperTitle": "1706.03762"})
    task_id = body["data"]["generatePost"]["id"]
    assert (await gql.wait_until_finished(task_id))["status"] == "COMPLETED"
    notes = (await gql(TASK, id=task_id))["data"]["task"]["researchNotes"]
    assert notes["paper"] is None and [s["kind"] for s in notes["sources"]] == ["request"]
    assert "the arXiv API answered HTTP 503" in notes["sourceNote"]
