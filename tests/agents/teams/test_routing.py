"""Routing, fall-back and revision logic with a scripted chat model whose bind_tools works."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from agents.teams.hierarchy import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.teams.nodes import RunContext
from agents.teams.state import greatest, initial_state, merge_reports
from db.enums import EventKind
from db.events import Event, TaskResult
from db.models import PostRequest
from tests.fakes import ScriptedChatModel, scripted, text, tool_call

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(
    paper_title="Attention Is All You Need",
    additional_context="The Transformer relies on attention alone. It reaches 28.4 BLEU on "
    "WMT 2014 English-to-German.",
    target_audience="ML engineers",
    tone="PROFESSIONAL",
    include_technical_details=True,
    max_hashtags=10,
)


async def run(
    model: ScriptedChatModel, *, max_revisions: int = 2, request: PostRequest = REQUEST
) -> tuple[dict, list[Event]]:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    out = await build_graph().ainvoke(
        initial_state(request, max_revisions=max_revisions),
        {"recursion_limit": RECURSION_LIMIT},
        context=RunContext(model=model, emit=emit),
    )
    return out, events


def routes(events: list[Event]) -> list[tuple[str, str, str]]:
    return [
        (e.agent, e.data["next"], e.data["source"]) for e in events if e.kind == EventKind.ROUTING
    ]


async def test_default_plan_with_the_models_choice_of_verifier_order() -> None:
    out, events = await run(scripted(verification_order=["style_checker"]))
    assert routes(events) == [
        ("meta_supervisor", "content_team", "plan"),
        ("content_supervisor", "paper_researcher", "plan"),
        ("content_supervisor", "linkedin_creator", "plan"),
        ("content_supervisor", "FINISH", "plan"),
        ("meta_supervisor", "verification_team", "plan"),
        ("verification_supervisor", "style_checker", "model"),
        ("verification_supervisor", "tech_verifier", "plan"),
        ("verification_supervisor", "FINISH", "plan"),
        ("meta_supervisor", "FINISH", "plan"),
    ]
    assert out["revision"] == 0
    assert all(r["approved"] for r in out["reports"])
    assert "#" in out["draft"]["content"]
    finished = [e.agent for e in events if e.kind == EventKind.AGENT_FINISHED]
    assert finished == ["paper_researcher", "linkedin_creator", "style_checker", "tech_verifier"]
    progress = [e.progress for e in events if e.kind == EventKind.AGENT_FINISHED]
    assert progress == [0.25, 0.5, 0.75, 0.99]


async def test_invalid_choice_falls_back_to_the_plan() -> None:
    # FINISH while both verifiers are pending is not valid: tech_verifier runs first.
    _, events = await run(scripted(verification_order=["FINISH", "FINISH"]))
    verification = [r for r in routes(events) if r[0] == "verification_supervisor"]
    assert verification[0] == ("verification_supervisor", "tech_verifier", "fallback")
    fallback = next(
        e for e in events if e.kind == EventKind.ROUTING and e.data["source"] == "fallback"
    )
    assert "'FINISH' is not valid now" in fallback.data["reason"]


async def test_unparseable_decision_falls_back_to_the_plan() -> None:
    def handler(messages, tools):  # type: ignore[no-untyped-def]
        if "Route" in tools:
            return text("I think the style checker should go")  # no tool call at all
        if "Judgement" in tools:
            return tool_call("Judgement", score=1, approved=True, issues=[])
        return text("Attention replaces recurrence. What next?")

    _, events = await run(ScriptedChatModel(handler=handler, calls=[]))
    verification = [r for r in routes(events) if r[0] == "verification_supervisor"]
    assert verification[0] == ("verification_supervisor", "tech_verifier", "fallback")


async def test_revision_loop_is_bounded_by_max_revisions() -> None:
    model = scripted(approve=False, meta_choice="content_team")
    out, events = await run(model, max_revisions=2)
    assert out["revision"] == 2
    writes = [
        e for e in events if e.kind == EventKind.AGENT_FINISHED and e.agent == "linkedin_creator"
    ]
    assert len(writes) == 3  # first draft + 2 revisions
    meta = [r for r in routes(events) if r[0] == "meta_supervisor"]
    assert meta[-1] == ("meta_supervisor", "FINISH", "plan")  # budget spent: no choice left
    assert [m[2] for m in meta].count("model") == 2  # the model chose both revisions
    revision_messages = [e for e in events if e.kind == EventKind.MESSAGE]
    assert [e.result for e in revision_messages] == [
        TaskResult(revisions=1),
        TaskResult(revisions=2),
    ]
    # the feedback reached the writer's sentence prompts of the last round
    writer_prompts = [c for c in model.calls if "WrittenSentence" in c["tools"]]
    assert "needs work" in str(writer_prompts[-1]["messages"][-1].content)


async def test_parallel_verifiers_fan_out_join_and_are_counted_once_per_round() -> None:
    parallel = PostRequest.model_validate(
        {**REQUEST.model_dump(), "orchestration_mode": "PARALLEL"}
    )
    out, events = await run(scripted(approve=False, meta_choice="content_team"), request=parallel)
    rounds = [r for r in routes(events) if r[0] == "verification_supervisor"]
    assert rounds == [("verification_supervisor", "all_verifiers", "plan"),
                      ("verification_supervisor", "FINISH", "plan")] * 3  # fmt: skip
    assert sorted(r["agent"] for r in out["reports"]) == ["style_checker", "tech_verifier"]
    assert out["steps_done"] == 1 + 3 * 3  # research, then 3 rounds of writer + 2 verifiers
    finished = [e for e in events if e.kind == EventKind.TEAM_FINISHED and e.result]
    assert all(len(e.result.verification_reports) == 2 for e in finished)  # both, joined
    last_round = [e.progress for e in events if e.progress is not None][-6:]
    assert last_round == sorted(last_round) and last_round[-1] < 1.0  # never goes back


def test_reports_merge_by_agent_and_an_empty_update_starts_a_round() -> None:
    tech, style = {"agent": "tech_verifier", "n": 1}, {"agent": "style_checker", "n": 1}
    assert merge_reports([tech], [style]) == [tech, style]
    assert merge_reports([tech, style], [{"agent": "tech_verifier", "n": 2}]) == [
        style,
        {"agent": "tech_verifier", "n": 2},
    ]
    assert merge_reports([tech, style], []) == []
    assert greatest(3, 2) == 3 and greatest(None, 2) == 2


async def test_nothing_to_write_from_is_not_revised() -> None:
    """An empty context leaves a post of the title and a question: NOTHING_SAID, and a
    revision (research never fetches again) could only say nothing once more."""
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    empty = REQUEST.model_copy(update={"additional_context": ""})
    out = await build_graph().ainvoke(
        initial_state(empty, max_revisions=2),
        {"recursion_limit": RECURSION_LIMIT},
        context=RunContext(model=scripted(meta_choice="content_team"), emit=emit),
    )
    assert out["revision"] == 0
    issues = [i for r in out["reports"] for i in r["issues"]]
    assert any(i.startswith("nothing said:") for i in issues), issues
    assert routes(events)[-1] == ("meta_supervisor", "FINISH", "plan")


async def test_meta_supervisor_may_accept_a_rejected_post() -> None:
    out, events = await run(scripted(approve=False, meta_choice="FINISH"))
    assert out["revision"] == 0
    assert routes(events)[-1] == ("meta_supervisor", "FINISH", "model")


async def test_revision_may_redo_research_when_the_content_supervisor_asks() -> None:
    out, events = await run(
        scripted(approve=lambda n: n >= 2, content_choice="paper_researcher"), max_revisions=1
    )
    research_runs = [
        e for e in events if e.kind == EventKind.AGENT_FINISHED and e.agent == "paper_researcher"
    ]
    assert len(research_runs) == 2
    assert out["research_round"] == 1 and out["draft_round"] == 1
    assert all(r["approved"] for r in out["reports"])


#: What a small model writes when left to itself: each first try of the writer's
#: sentence calls is one of these; its second try is the fact it was given.
INVENTED = (
    "It hits 99.9% accuracy on every benchmark.",
    "This revolutionary model was published by the Journal of Machine Learning Research.",
    "We propose it for translation.",
)


async def test_the_writer_checks_each_sentence_and_keeps_only_those_that_pass() -> None:
    def sentence(fact: str, n: int) -> str:
        return INVENTED[(n // 2) % len(INVENTED)] if n % 2 == 0 else fact

    model = scripted(sentence=sentence, meta_choice="content_team")
    out, events = await run(model, max_revisions=1)
    checked = [
        e.data["result"]
        for e in events
        if e.kind == EventKind.TOOL_RESULT and e.data["tool"] == "check_sentence"
    ]
    rejected = [c for c in checked if not c["passed"]]
    assert len(rejected) >= 2 and all(c["problems"] for c in rejected)
    assert any("99.9%" in " ".join(c["problems"]) for c in rejected)
    final = out["draft"]["content"]
    for invented in ("99.9", "revolutionary", "Journal", "We propose"):
        assert invented not in final
    assert "28.4 BLEU" in final  # the fact, supported by the context: kept
    tech = next(r for r in out["reports"] if r["agent"] == "tech_verifier")
    assert tech["approved"] and tech["checks"]["unsupported_claims"] == []
    assert out["revision"] == 0  # the first draft was already grounded


def test_a_run_on_sentence_cannot_be_generated() -> None:
    """The writer's structured output bounds each sentence: the JSON schema of the tool
    the model is forced to call (llama.cpp makes it a grammar) has a maxLength."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from agents.teams.post_plan import SENTENCE_MAX_CHARS
    from agents.teams.writer import WrittenSentence

    schema = convert_to_openai_tool(WrittenSentence)["function"]["parameters"]
    assert schema["properties"]["sentence"]["maxLength"] == SENTENCE_MAX_CHARS <= 180


async def test_usage_is_reported_for_every_model_call() -> None:
    model = scripted(verification_order=["style_checker"])
    _, events = await run(model)
    usage = [e for e in events if e.kind == EventKind.LLM_USAGE]
    assert len(usage) == len(model.calls)
    assert all(e.data["total_tokens"] == 120 for e in usage)


async def test_model_errors_are_reported_and_raised() -> None:
    def handler(messages, tools):  # type: ignore[no-untyped-def]
        raise ConnectionError("model went away")

    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    context = RunContext(model=ScriptedChatModel(handler=handler, calls=[]), emit=emit)
    with pytest.raises(ConnectionError):
        await build_graph().ainvoke(initial_state(REQUEST, max_revisions=1), context=context)
    error = events[-1]
    assert (error.kind, error.agent) == (EventKind.AGENT_ERROR, "paper_researcher")
    # The type only: an exception's text may be a provider's raw answer or SQL.
    assert error.message == "paper_researcher stopped: ConnectionError"


async def test_verification_graph_alone_checks_a_given_post() -> None:
    state = initial_state(REQUEST, max_revisions=0)
    state["draft"] = {"content": "x" * 3100 + " #a #b", "hashtags": []}
    state["draft_round"] = 0
    out = await build_verification_graph().ainvoke(state, context=RunContext(model=scripted()))
    style = next(r for r in out["reports"] if r["agent"] == "style_checker")
    assert not style["approved"]  # the model approved, the hard limit did not
    assert any("3000" in issue for issue in style["issues"])
    assert {r["agent"] for r in out["reports"]} == {"tech_verifier", "style_checker"}


def test_route_model_rejects_names_outside_the_literal() -> None:
    from pydantic import ValidationError

    from agents.teams.supervisors import route_model

    route = route_model(["a", "b"])
    assert route(next="a", reason="r").next == "a"
    with pytest.raises(ValidationError):
        route(next="c", reason="r")
    assert isinstance(tool_call("Route", next="a"), AIMessage)


def test_report_combines_checks_and_judgement() -> None:
    from agents.teams.verification import Judgement, build_report

    passed = {"issues": [], "score": 1.0, "passed": True, "hook": "h"}
    failed = {"issues": ["3 hashtags; at most 2 allowed"], "score": 0.75, "passed": False}
    yes = Judgement(score=0.9, approved=True, issues=["tighten the hook"])
    report = build_report(agent="style_checker", kind="STYLE", check=passed, judgement=yes)
    assert (report.approved, report.score, report.issues) == (
        True,
        0.9,
        ["tighten the hook"],
    )
    assert report.checks == {"hook": "h"}
    # the model cannot override a failed hard check
    assert not build_report(agent="s", kind="STYLE", check=failed, judgement=yes).approved
    # a concrete rejection counts: its issues are named and it lowers the score
    no = Judgement(score=0.2, approved=False, issues=["credits the wrong lab"])
    rejected = build_report(agent="t", kind="TECHNICAL", check=passed, judgement=no)
    assert not rejected.approved and rejected.issues == ["credits the wrong lab"]
    assert rejected.score == 0.2 and rejected.model_judgement
    # an out-of-range score is clamped
    high = Judgement(score=7, approved=True)
    assert build_report(agent="s", kind="STYLE", check=passed, judgement=high).score == 1.0
    # without a usable judgement the checks alone decide
    alone = build_report(
        agent="s", kind="STYLE", check=passed, judgement=None, judgement_error="unparseable answer"
    )
    assert alone.approved and not alone.model_judgement


@pytest.mark.parametrize(
    "judgement",
    [
        {"score": 0.5, "approved": True},  # "approved" with the middling default
        {"score": 0.3, "approved": True},  # "approved" with a failing grade
        {"score": 0.5, "approved": False},  # a bare "no"
    ],
)
def test_a_judgement_without_substance_is_ignored_and_said_so(judgement: dict) -> None:
    from agents.teams.verification import Judgement, build_report

    passed = {"issues": [], "score": 1.0, "passed": True}
    failed = {"issues": ["'OpenAI' is not in the context"], "score": 0.75, "passed": False}
    ignored = build_report(
        agent="t", kind="TECHNICAL", check=passed, judgement=Judgement(**judgement)
    )
    assert ignored.approved and ignored.score == 1.0 and not ignored.model_judgement
    assert "judgement ignored" in (ignored.model_judgement_error or "")
    still = build_report(
        agent="t", kind="TECHNICAL", check=failed, judgement=Judgement(**judgement)
    )
    assert not still.approved and still.issues == failed["issues"]
