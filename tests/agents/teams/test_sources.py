"""Real sources: arXiv ids and links, the arXiv API's Atom feed, Tavily web search, and
what the fetched text does to a run (the writer and both verifiers ground against it;
a source that fails leaves the request as the user gave it).

Every network test talks to `tests/source_server.py` on a loopback port, serving
hand-written fixtures in arXiv's and Tavily's formats; `no_internet` makes any other
connection fail, so no test here can leave the machine.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from agents.checks import verdicts
from agents.teams import arxiv, fetched_text, sources
from agents.teams.arxiv import ArxivId, parse_arxiv_id
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.teams.nodes import RunContext
from agents.teams.sources import SourceError, SourcesConfig
from agents.teams.state import given_request_of, initial_state, request_of
from db.enums import EventKind
from db.events import Event
from db.models import PostRequest
from db.outputs import Fetched
from tests.conftest import service_missing
from tests.fakes import ScriptedChatModel, scripted, system_text
from tests.source_server import TAVILY_KEY, SourceServer, fixture

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("offline")]

ATTENTION = ArxivId("1706.03762")
#: A sentence of the Attention abstract (as arXiv has it) that the user's request lacks.
ONLY_IN_ABSTRACT = "On WMT 2014 English-to-French, the Transformer reaches 41.8 BLEU."
#: The same claim with a number that appears nowhere.
NOWHERE = "On WMT 2014 English-to-French, the Transformer reaches 57.3 BLEU."


def config_for(server: SourceServer, **overrides: Any) -> SourcesConfig:
    values: dict[str, Any] = {"enabled": True, "arxiv_api_url": server.arxiv_url, "timeout": 5.0}
    return SourcesConfig(**{**values, **overrides})


# --- ids and links ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1706.03762", ArxivId("1706.03762")),
        ("1706.03762v7", ArxivId("1706.03762", "v7")),
        ("arXiv:1706.03762v7", ArxivId("1706.03762", "v7")),
        ("arxiv: 1706.03762", ArxivId("1706.03762")),
        (" 2106.09685 ", ArxivId("2106.09685")),
        ("0704.0001", ArxivId("0704.0001")),  # the first new-style id
        ("1412.6980", ArxivId("1412.6980")),  # 4 digits up to 1412
        ("https://arxiv.org/abs/1706.03762", ArxivId("1706.03762")),
        ("http://arxiv.org/abs/1706.03762v7", ArxivId("1706.03762", "v7")),
        ("arxiv.org/abs/1706.03762", ArxivId("1706.03762")),
        ("https://arxiv.org/pdf/1706.03762", ArxivId("1706.03762")),
        ("arxiv.org/pdf/1706.03762v7.pdf", ArxivId("1706.03762", "v7")),
        ("https://www.arxiv.org/abs/2106.09685v2/", ArxivId("2106.09685", "v2")),
        ("https://arxiv.org/html/2106.09685v2#S4", ArxivId("2106.09685", "v2")),
        ("http://export.arxiv.org/abs/1706.03762?context=cs", ArxivId("1706.03762")),
        ("https://doi.org/10.48550/arXiv.1706.03762", ArxivId("1706.03762")),
        ("hep-th/9901001", ArxivId("hep-th/9901001")),  # old style
        ("math.GT/0309136v2", ArxivId("math.GT/0309136", "v2")),
        ("arXiv:cs/0112017", ArxivId("cs/0112017")),
        ("https://arxiv.org/abs/hep-th/9711200v3", ArxivId("hep-th/9711200", "v3")),
    ],
)
def test_ids_and_links_are_recognised(text: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Attention Is All You Need",
        "LoRA: Low-Rank Adaptation of Large Language Models",
        "GPT-4 Technical Report",
        "1706.03762 Attention Is All You Need",  # a title with an id in it is a title
        "Attention Is All You Need (arXiv:1706.03762)",
        "0703.0001",  # before April 2007 there were no new-style ids
        "1713.00001",  # no month 13
        "1501.0001",  # 5 digits from 1501 on
        "1412.69801",  # 4 digits up to 1412
        "1706.03762.pdf",  # a file name, not a link
        "https://arxiv.org/abs/17060.3762",
        "https://example.org/abs/1706.03762",
    ],
)
def test_a_title_is_not_an_id(text: str) -> None:
    assert parse_arxiv_id(text) is None


def test_ids_give_their_abstract_page() -> None:
    assert ArxivId("1706.03762", "v7").abs_url == "https://arxiv.org/abs/1706.03762v7"
    assert ArxivId("hep-th/9901001").abs_url == "https://arxiv.org/abs/hep-th/9901001"


def test_the_request_accepts_every_form_of_id_as_its_title() -> None:
    for title in ("0704.0001", "arXiv:1706.03762v7", "https://arxiv.org/pdf/1706.03762v7.pdf"):
        assert PostRequest(paper_title=title).paper_title == title


# --- the Atom feed ---------------------------------------------------------------------


def test_the_attention_feed_parses_to_its_record() -> None:
    paper = arxiv.parse_arxiv_feed(fixture("arxiv_1706.03762.xml"), ATTENTION)
    assert paper.arxiv_id == "1706.03762v7"
    assert paper.title == "Attention Is All You Need"
    assert paper.authors[0] == "Ashish Vaswani" and paper.authors[-1] == "Illia Polosukhin"
    assert len(paper.authors) == 8 and "Aidan N. Gomez" in paper.authors
    assert paper.abstract.startswith("The dominant sequence transduction models are based")
    assert "\n" not in paper.abstract and "  " not in paper.abstract
    assert "BLEU score of 41.8 after training for 3.5 days on eight GPUs" in paper.abstract
    assert paper.published == "2017-06-12T17:57:34Z"
    assert paper.updated == "2023-08-02T00:41:18Z"
    assert paper.primary_category == "cs.CL"
    assert paper.url == "https://arxiv.org/abs/1706.03762"
    assert paper.pdf_url == "https://arxiv.org/pdf/1706.03762v7"


def test_a_versioned_id_parses_its_version() -> None:
    lora = ArxivId("2106.09685", "v2")
    paper = arxiv.parse_arxiv_feed(fixture("arxiv_2106.09685.xml"), lora)
    assert paper.title == "LoRA: Low-Rank Adaptation of Large Language Models"
    assert paper.authors[:2] == ["Edward J. Hu", "Yelong Shen"]
    assert "by 10,000 times and the GPU memory requirement by 3 times" in paper.abstract
    assert paper.published.startswith("2021-06-17") and paper.arxiv_id == "2106.09685v2"
    assert paper.url == "https://arxiv.org/abs/2106.09685v2"


@pytest.mark.parametrize(
    ("name", "asked", "message"),
    [
        ("arxiv_empty.xml", ArxivId("2501.99999"), "arXiv has no paper with the id 2501.99999"),
        ("arxiv_error.xml", ATTENTION, "incorrect id format for 1706.037620"),
        ("arxiv_2106.09685.xml", ATTENTION, "answered with 2106.09685v2 when asked for"),
        ("arxiv_1706.03762.xml", ArxivId("1706.03762", "v3"), "answered with 1706.03762v7"),
    ],
)
def test_a_feed_without_the_paper_is_an_error(name: str, asked: ArxivId, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        arxiv.parse_arxiv_feed(fixture(name), asked)


def test_an_answer_that_is_not_atom_is_an_error() -> None:
    with pytest.raises(SourceError, match="not an Atom feed"):
        arxiv.parse_arxiv_feed(b"<html><body>Service Unavailable", ATTENTION)


async def test_a_url_as_the_answer_is_not_fetched(server: SourceServer) -> None:
    # feedparser fetches a str that looks like a URL; the parser hands it bytes instead
    with pytest.raises(SourceError, match="not an Atom feed"):
        arxiv.parse_arxiv_feed(f"{server.arxiv_url}/query?id_list=1706.03762", ATTENTION)
    assert server.requests == []


# --- the arXiv API over HTTP -----------------------------------------------------------


async def test_fetch_asks_the_api_for_the_id(server: SourceServer) -> None:
    paper = await arxiv.fetch_arxiv(ATTENTION, api_url=server.arxiv_url, time_limit=5)
    assert paper.title == "Attention Is All You Need"
    assert server.asked("/arxiv/query") == [{"id_list": "1706.03762", "max_results": "1"}]


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (lambda s: s.fail.update({"1706.03762": 500}), "answered HTTP 500$"),
        (lambda s: s.fail.update({"1706.03762": 400}), "HTTP 400: incorrect id format"),
        (lambda s: s.delay.update({"1706.03762": 3.0}), "did not answer within 0.5 s"),
    ],
    ids=["http-500", "http-400", "timeout"],
)
async def test_a_failing_api_is_a_source_error(
    server: SourceServer, arrange: Any, message: str
) -> None:
    arrange(server)
    with pytest.raises(SourceError, match=message):
        await arxiv.fetch_arxiv(ATTENTION, api_url=server.arxiv_url, time_limit=0.5)


async def test_an_unreachable_api_is_a_source_error() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="could not be reached"):
        await arxiv.fetch_arxiv(ATTENTION, api_url=f"http://127.0.0.1:{port}/api")


async def test_the_real_api_is_out_of_reach_in_tests() -> None:
    with pytest.raises(SourceError, match="could not be reached"):
        await arxiv.fetch_arxiv(ATTENTION, time_limit=2)  # export.arxiv.org


# --- Tavily ----------------------------------------------------------------------------


def _tavily() -> None:
    try:
        import langchain_tavily  # noqa: F401
    except ImportError:
        service_missing("langchain-tavily is not installed (pip install -e '.[sources]')")


async def test_web_search_goes_through_the_tavily_integration(server: SourceServer) -> None:
    _tavily()
    found = await sources.search_web(
        "Attention Is All You Need", api_key=TAVILY_KEY, api_url=server.tavily_url
    )
    assert [r.url for r in found] == [
        "https://research.google/blog/transformer-a-novel-neural-network-architecture-for-"
        "language-understanding/",
        "https://en.wikipedia.org/wiki/Attention_Is_All_You_Need",
    ]
    assert all(len(r.content) <= sources.MAX_WEB_CHARS for r in found)
    (asked,) = server.asked("/tavily/search")
    assert asked["query"] == "Attention Is All You Need" and asked["max_results"] == 3


@pytest.mark.parametrize(("status", "key"), [(None, "tvly-wrong"), (500, TAVILY_KEY)])
async def test_a_failing_web_search_is_a_source_error(
    server: SourceServer, status: int | None, key: str
) -> None:
    _tavily()
    server.fail_web = status
    with pytest.raises(SourceError, match=r"Tavily search failed: Error (401|500)"):
        await sources.search_web("Attention", api_key=key, api_url=server.tavily_url)


async def test_web_search_without_the_integration_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_tavily", None)
    with pytest.raises(SourceError, match=r"pip install 'postassist\[sources\]'"):
        await sources.search_web("Attention", api_key=TAVILY_KEY)


# --- a generation through the graph ----------------------------------------------------


async def generate(
    request: PostRequest,
    config: SourcesConfig,
    model: ScriptedChatModel | None = None,
    **state: Any,
) -> tuple[dict[str, Any], list[Event]]:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    out = await build_graph().ainvoke(
        {**initial_state(request, max_revisions=state.pop("max_revisions", 0)), **state},
        {"recursion_limit": RECURSION_LIMIT},
        context=RunContext(model=model or scripted(), emit=emit, sources=config),
    )
    return out, events


def tool_events(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.data.get("tool") == name]


def technical(out: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in out["reports"] if r["kind"] == "TECHNICAL")


async def test_a_generation_from_an_arxiv_link_grounds_on_the_fetched_abstract(
    server: SourceServer,
) -> None:
    request, model = PostRequest(paper_title="https://arxiv.org/abs/1706.03762"), scripted()
    out, events = await generate(request, config_for(server), model)

    call, result = tool_events(events, "fetch_arxiv_paper")
    assert call.kind == EventKind.TOOL_CALL and call.data["args"] == {
        "arxiv_id": "1706.03762",
        "api_url": server.arxiv_url,
        "timeout_seconds": 5.0,
    }
    assert result.kind == EventKind.TOOL_RESULT and result.data["result"]["ok"] is True
    notes = out["research"]
    assert notes["fetched"]["paper"]["title"] == "Attention Is All You Need"
    arxiv = next(s for s in notes["sources"] if s["kind"] == "arxiv")
    assert arxiv["url"] == "https://arxiv.org/abs/1706.03762" and arxiv["id"] == "1706.03762v7"
    assert "Fetched from arXiv: 1706.03762v7" in notes["source_note"]
    assert "41.8" in notes["metrics"]  # the metrics come from the fetched abstract
    finished = next(
        e for e in events if e.kind == EventKind.AGENT_FINISHED and e.agent == "paper_researcher"
    )
    assert finished.message.endswith(", arXiv 1706.03762v7")

    # Every later step works from the fetched title and text; the request stays as given.
    assert given_request_of(out).paper_title == "https://arxiv.org/abs/1706.03762"
    effective = request_of(out)
    assert effective.paper_title == "Attention Is All You Need"
    assert "BLEU score of 41.8" in effective.additional_context
    assert "https://arxiv.org/abs/1706.03762" in effective.additional_context
    (check,) = [e for e in tool_events(events, "check_technical_accuracy") if e.kind == "TOOL_CALL"]
    assert check.data["args"]["paper_title"] == "Attention Is All You Need"
    assert check.data["args"]["additional_context"] == effective.additional_context
    judgements = [system_text(c["messages"]) for c in model.calls if "Judgement" in c["tools"]]
    assert any("BLEU score of 41.8" in prompt for prompt in judgements)  # TechVerifier's

    # The TechVerifier on this run's state: a number only the abstract has passes, a
    # number nowhere fails, and the abstract is what makes the difference.
    assert not await unsupported(out, ONLY_IN_ABSTRACT)
    assert "'57.3" in " ".join(await unsupported(out, NOWHERE))
    as_id = {**out["request"], "paper_title": "1706.03762"}
    without = {**out, "request": as_id, "research": {**out["research"], "fetched": None}}
    assert "'41.8" in " ".join(await unsupported(without, ONLY_IN_ABSTRACT))
    # The post may link the paper: its abstract page is in the context.
    link = "Read it: https://arxiv.org/abs/1706.03762"
    assert not await unsupported(out, link)
    assert "the link" in " ".join(await unsupported(without, link))
    # ... and it does: the writer links the abstract page it fetched, and it is approved.
    assert "Paper: https://arxiv.org/abs/1706.03762" in out["draft"]["content"]
    assert all(r["approved"] for r in out["reports"])


async def unsupported(state: dict[str, Any], sentence: str) -> list[str]:
    """The TechVerifier's unsupported-claim issues for a draft of `sentence` alone, run
    through the verification graph on `state` (a finished run's)."""
    draft = {"content": f"{sentence}\n\n#Transformers", "hashtags": ["Transformers"]}
    run = {**state, "draft": draft, "reports": [], "revision": 0, "max_revisions": 0}
    out = await build_verification_graph().ainvoke(run, context=RunContext(model=scripted()))
    return [i for i in technical(out)["issues"] if i.startswith("unsupported claim")]


@pytest.mark.parametrize(
    ("arrange", "title", "error"),
    [
        (lambda s: s.fail.update({"1706.03762": 500}), "1706.03762", "answered HTTP 500"),
        (lambda s: s.delay.update({"1706.03762": 3.0}), "1706.03762", "within 0.5 s"),
        (lambda s: None, "arXiv:2501.99999", "no paper with the id 2501.99999"),
        (lambda s: setattr(s, "url", "http://127.0.0.1:9"), "1706.03762", "not be reached"),
    ],
    ids=["http-500", "timeout", "unknown-id", "unreachable"],
)
async def test_a_failing_source_leaves_the_request_as_given(
    server: SourceServer, arrange: Any, title: str, error: str
) -> None:
    context = "The Transformer reaches 28.4 BLEU on WMT 2014 English-to-German."
    request = PostRequest(paper_title=title, additional_context=context)
    arrange(server)
    out, events = await generate(request, config_for(server, timeout=0.5))

    assert out["draft"]["content"] and {r["kind"] for r in out["reports"]} == {
        "TECHNICAL",
        "STYLE",
    }
    fetched = out["research"]["fetched"]
    assert fetched["paper"] is None and fetched["web"] == []
    (attempt,) = fetched["attempts"]
    assert attempt["source"] == "arxiv" and not attempt["ok"] and error in attempt["error"]
    result = next(e for e in tool_events(events, "fetch_arxiv_paper") if e.kind == "TOOL_RESULT")
    assert result.data["result"]["ok"] is False and error in result.data["result"]["error"]
    notes = out["research"]
    assert [s["kind"] for s in notes["sources"]] == ["request"]  # nothing invented
    assert "arXiv failed for" in notes["source_note"] and error in notes["source_note"]
    assert "rest only on the title and the context" in notes["source_note"]
    assert request_of(out) == request  # the writer and verifiers get what the user gave
    finished = next(
        e for e in events if e.kind == EventKind.AGENT_FINISHED and e.agent == "paper_researcher"
    )
    assert finished.message.endswith(", no source fetched")


async def test_fetching_off_asks_no_source(server: SourceServer) -> None:
    request = PostRequest(paper_title="1706.03762")
    out, events = await generate(request, config_for(server, enabled=False))
    assert server.requests == [] and not tool_events(events, "fetch_arxiv_paper")
    note = out["research"]["source_note"]
    assert "Fetching is off (SOURCES_ENABLED=false)" in note and "1706.03762" in note
    assert request_of(out) == request


async def test_a_plain_title_asks_no_source_and_says_so(server: SourceServer) -> None:
    out, _ = await generate(
        PostRequest(paper_title="Attention Is All You Need"), config_for(server)
    )
    assert server.requests == []
    note = out["research"]["source_note"]
    assert "the title is not an arXiv id or link" in note
    assert "Web search is off: no TAVILY_API_KEY is set" in note


async def test_web_results_join_the_context_and_keep_the_key_out_of_the_log(
    server: SourceServer,
) -> None:
    _tavily()
    config = config_for(server, tavily_api_key=TAVILY_KEY, tavily_api_url=server.tavily_url)
    out, events = await generate(PostRequest(paper_title="arXiv:1706.03762v7"), config)
    (asked,) = server.asked("/tavily/search")
    assert asked["query"] == "Attention Is All You Need"  # arXiv's title, not the id
    web = [s for s in out["research"]["sources"] if s["kind"] == "web"]
    assert [s["url"] for s in web][1] == "https://en.wikipedia.org/wiki/Attention_Is_All_You_Need"
    assert "eight scientists working at Google" in request_of(out).additional_context
    call = next(e for e in tool_events(events, "search_web") if e.kind == "TOOL_CALL")
    assert call.data["args"] == {"query": "Attention Is All You Need"}
    assert TAVILY_KEY not in repr([e.data for e in events]) + repr(out)


async def test_a_failing_web_search_keeps_the_arxiv_paper(server: SourceServer) -> None:
    _tavily()
    server.fail_web = 503
    config = config_for(server, tavily_api_key=TAVILY_KEY, tavily_api_url=server.tavily_url)
    out, _ = await generate(PostRequest(paper_title="1706.03762"), config)
    fetched = out["research"]["fetched"]
    assert fetched["paper"] is not None and fetched["web"] == []
    assert "Web search (Tavily) failed" in out["research"]["source_note"]


# --- fetched once per task -------------------------------------------------------------


def crashing_once(model: ScriptedChatModel) -> ScriptedChatModel:
    """`model`, except that the first call after research raises (a worker that dies
    while the LinkedInCreator writes)."""
    crashed: list[bool] = []

    def handler(messages: list[BaseMessage], tools: list[str]) -> Any:
        if not crashed and "Route" not in tools and "PaperResearcher" not in system_text(messages):
            crashed.append(True)
            raise RuntimeError("the worker died")
        return model.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=[])


async def test_a_resumed_run_does_not_fetch_again(server: SourceServer) -> None:
    graph = build_graph(checkpointer=InMemorySaver())
    config: Any = {"recursion_limit": RECURSION_LIMIT, "configurable": {"thread_id": "t1"}}
    context = RunContext(model=crashing_once(scripted()), sources=config_for(server))
    state = initial_state(PostRequest(paper_title="1706.03762"), max_revisions=0)
    with pytest.raises(RuntimeError, match="the worker died"):
        await graph.ainvoke(state, config, context=context, durability="sync")
    assert len(server.asked("/arxiv/query")) == 1
    (resume_at,) = (await graph.aget_state(config)).next
    assert resume_at == "content_team"

    server.fail["1706.03762"] = 500  # a second fetch would now fail, and show
    out = await graph.ainvoke(None, config, context=context, durability="sync")
    assert len(server.asked("/arxiv/query")) == 1
    assert out["research"]["fetched"]["paper"]["title"] == "Attention Is All You Need"
    assert "BLEU score of 41.8" in request_of(out).additional_context


async def test_a_revision_reuses_the_first_rounds_sources(server: SourceServer) -> None:
    # The first draft is rejected; the content supervisor sends it back to research.
    model = scripted(approve=lambda n: n >= 2, content_choice="paper_researcher")
    out, events = await generate(
        PostRequest(paper_title="1706.03762"), config_for(server), model, max_revisions=1
    )
    researched = [
        e for e in events if e.kind == EventKind.AGENT_FINISHED and e.agent == "paper_researcher"
    ]
    assert len(researched) == 2 and out["revision"] == 1
    assert (
        len(server.asked("/arxiv/query")) == 1
        and len(tool_events(events, "fetch_arxiv_paper")) == 2
    )
    assert out["research"]["fetched"]["paper"]["arxiv_id"] == "1706.03762v7"


# --- the effective context -------------------------------------------------------------


def test_the_context_is_the_users_then_the_paper_within_the_limit() -> None:
    paper = arxiv.parse_arxiv_feed(fixture("arxiv_1706.03762.xml"), ATTENTION)
    fetched = fetched_text.nothing_fetched(ATTENTION).model_copy(update={"paper": paper})
    request = PostRequest(paper_title="1706.03762", additional_context="My notes.")
    effective = fetched_text.effective_request(request, fetched)
    assert effective.additional_context.startswith('My notes.\n\n"Attention Is All You Need"')
    assert (
        "Illia Polosukhin (arXiv 1706.03762v7, https://arxiv.org/abs/1706.03762), first "
        "published on arXiv on 12 June 2017." in effective.additional_context
    )
    assert effective.additional_context.endswith("both with large and limited training data.")
    full = PostRequest(paper_title="1706.03762", additional_context="x" * 9_500)
    assert fetched_text.effective_request(full, fetched).additional_context == "x" * 9_500
    note = fetched_text.source_note(full.additional_context, fetched)
    assert "1 fetched block left out" in note


def test_the_papers_date_and_authors_ground_a_post() -> None:
    paper = arxiv.parse_arxiv_feed(fixture("arxiv_1706.03762.xml"), ATTENTION)
    context = fetched_text.grounding_context("", Fetched(paper=paper))
    post = "In June 2017, Ashish Vaswani and colleagues introduced the Transformer."
    report = verdicts.technical_report(post, title=paper.title, context=context)
    assert report["unsupported_claims"] == [], report["issues"]
    wrong = "In March 2019, Geoffrey Hinton introduced the Transformer."
    report = verdicts.technical_report(wrong, title=paper.title, context=context)
    assert {c["kind"] for c in report["unsupported_claims"]} >= {"DATE"}
