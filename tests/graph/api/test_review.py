"""Human review, pause and follow-up revisions through GraphQL on a real uvicorn server,
followed with real graphql-transport-ws subscriptions (the CLI's client)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from graph.app import create_app
from graph.cli.client import TASK_PROGRESS, GraphQLClient, GraphQLClientError
from graph.settings import Settings
from tests.fakes import ScriptedChatModel, scripted, system_text

pytestmark = pytest.mark.anyio

GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id review } }"
TASK = """query($id: ID!) { task(id: $id) {
  status revisions approved pauseRequested parentId revisionOf
  result { content hashtags } verificationReports { agent approved issues }
  history { id } } }"""
REVIEW = """mutation($id: ID!, $decision: ReviewDecision!, $content: String, $feedback: String,
  $expected: Int) {
  reviewTask(id: $id, decision: $decision, content: $content, feedback: $feedback,
    expectedRevision: $expected) { status revisions result { content hashtags } } }"""
UPDATES = "subscription { taskUpdates { id status revisions } }"
PAPER = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone.",
    "maxHashtags": 3,
}
#: Seconds a scripted run may take to reach the status a test waits for.
WITHIN = 30.0


def rejecting() -> ScriptedChatModel:
    """Verifiers that never approve (the style checker's hard checks still pass)."""
    return scripted(verification_order=["style_checker"], approve=False)


@pytest.fixture
def model(request: pytest.FixtureRequest) -> ScriptedChatModel:
    factory = getattr(request, "param", None)
    return factory() if factory else scripted(verification_order=["style_checker"])


@pytest.fixture
def client(live_server: Callable[[str], str]) -> GraphQLClient:
    return GraphQLClient(f"http://{live_server('/graphql')}", timeout=WITHIN)


async def start(client: GraphQLClient, **fields: Any) -> str:
    data = await client.execute(GENERATE, {"input": {**PAPER, **fields}})
    return data["generatePost"]["id"]


async def events_until(
    client: GraphQLClient, task_id: str, status: str, *, nth: int = 1
) -> list[dict]:
    """The task's events over taskProgress from the start until the `nth` with `status`."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(WITHIN):
        async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
            events.append(data["taskProgress"])
            if [e["status"] for e in events].count(status) == nth:
                return events
    raise AssertionError(f"the stream ended before {status}: {[e['status'] for e in events]}")


async def error_code(request: Any) -> tuple[str, dict[str, Any]]:
    with pytest.raises(GraphQLClientError) as caught:
        await request
    extensions = caught.value.errors[0]["extensions"]
    return extensions["code"], extensions


@contextlib.asynccontextmanager
async def updates(client: GraphQLClient) -> AsyncIterator[list[dict[str, Any]]]:
    """taskUpdates collected in the background for the block's duration."""
    seen: list[dict[str, Any]] = []

    async def collect() -> None:
        async for data in client.subscribe(UPDATES, {}):
            seen.append(data["taskUpdates"])

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.3)  # subscribed before the test starts work
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_always_waits_for_review_then_an_approved_edit_completes_it(
    client: GraphQLClient,
) -> None:
    async with updates(client) as pushed:
        task_id = await start(client, review="ALWAYS")
        events = await events_until(client, task_id, "AWAITING_REVIEW")
        await asyncio.sleep(0.3)
    waiting = events[-1]
    assert not waiting["isTerminal"] and waiting["data"]["revision"] == 0
    draft = "\n\n".join(waiting["data"]["draft"]["paragraphs"])
    assert draft and len(waiting["data"]["reports"]) == 2
    assert {r["agent"] for r in waiting["data"]["reports"]} == {"tech_verifier", "style_checker"}
    assert "open_issues" in waiting["data"]
    assert {"id": task_id, "status": "AWAITING_REVIEW", "revisions": 0} in pushed
    task = (await client.execute(TASK, {"id": task_id}))["task"]
    assert task["status"] == "AWAITING_REVIEW" and task["result"]["content"] == draft

    too_many = draft + "\n\n#One #Two #Three #Four"
    code, extensions = await error_code(
        client.execute(REVIEW, {"id": task_id, "decision": "APPROVE", "content": too_many})
    )
    assert (code, extensions["check"], extensions["field"]) == (
        "BAD_USER_INPUT",
        "MAX_HASHTAGS",
        "content",
    )
    code, _ = await error_code(
        client.execute(REVIEW, {"id": task_id, "decision": "APPROVE", "expected": 1})
    )
    assert code == "CONFLICT"  # revision 1 is not the one awaiting review

    edited = "Attention replaces recurrence in the Transformer.\n\n" + draft
    done = (
        await client.execute(
            REVIEW, {"id": task_id, "decision": "APPROVE", "content": edited, "expected": 0}
        )
    )["reviewTask"]
    assert done["status"] == "COMPLETED" and done["result"]["content"] == edited
    code, _ = await error_code(client.execute(REVIEW, {"id": task_id, "decision": "APPROVE"}))
    assert code == "CONFLICT"  # the second answer changes nothing

    events = await events_until(client, task_id, "COMPLETED")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    decision = next(e for e in events if e["kind"] == "REVIEW_DECISION")
    assert decision["data"]["decision"] == "APPROVE" and decision["data"]["edited"]
    assert decision["data"]["reviewer"] == "local"
    assert "+Attention replaces recurrence in the Transformer." in decision["data"]["diff"]


async def test_revise_sends_the_feedback_to_the_next_draft_and_reject_cancels(
    client: GraphQLClient, model: ScriptedChatModel
) -> None:
    task_id = await start(client, review="ALWAYS")
    await events_until(client, task_id, "AWAITING_REVIEW")
    code, extensions = await error_code(
        client.execute(REVIEW, {"id": task_id, "decision": "REVISE", "feedback": " "})
    )
    assert (code, extensions["field"]) == ("BAD_USER_INPUT", "feedback")
    calls = len(model.calls)
    feedback = "Shorter, and mention the dataset."
    revised = await client.execute(
        REVIEW, {"id": task_id, "decision": "REVISE", "feedback": feedback, "expected": 0}
    )
    assert revised["reviewTask"]["status"] in ("PENDING", "RUNNING")
    events = await events_until(client, task_id, "AWAITING_REVIEW", nth=2)
    waiting = [e for e in events if e["status"] == "AWAITING_REVIEW"]
    assert [e["data"]["revision"] for e in waiting] == [0, 1]
    writer_prompts = [
        str(c["messages"][-1].content)
        for c in model.calls[calls:]
        if "WrittenSentence" in c["tools"]
    ]
    assert writer_prompts and all(feedback in p for p in writer_prompts)
    assert not any("PaperResearcher" in system_text(c["messages"]) for c in model.calls[calls:])

    code, _ = await error_code(
        client.execute(REVIEW, {"id": task_id, "decision": "REJECT", "expected": 0})
    )
    assert code == "CONFLICT"  # revision 0 was answered already
    rejected = await client.execute(
        REVIEW, {"id": task_id, "decision": "REJECT", "feedback": "Off topic.", "expected": 1}
    )
    assert rejected["reviewTask"]["status"] == "CANCELLED"
    events = await events_until(client, task_id, "CANCELLED")
    assert events[-1]["isTerminal"] and "Off topic." in events[-1]["message"]


@pytest.mark.parametrize("model", [rejecting], indirect=True)
async def test_on_rejection_waits_once_the_revisions_are_used_up(client: GraphQLClient) -> None:
    task_id = await start(client, review="ON_REJECTION")
    events = await events_until(client, task_id, "AWAITING_REVIEW")
    waiting = events[-1]
    assert waiting["data"]["revision"] == 2 and not waiting["data"]["approved"]
    assert waiting["data"]["open_issues"]
    done = await client.execute(REVIEW, {"id": task_id, "decision": "APPROVE", "expected": 2})
    assert done["reviewTask"]["status"] == "COMPLETED"
    task = (await client.execute(TASK, {"id": task_id}))["task"]
    assert task["approved"] is False  # the verifiers' verdict on the draft stays


async def test_on_rejection_does_not_wait_for_an_approved_post(client: GraphQLClient) -> None:
    task_id = await start(client, review="ON_REJECTION")
    events = await events_until(client, task_id, "COMPLETED")
    assert "AWAITING_REVIEW" not in [e["status"] for e in events]


#: Holds every call of the `gated` model while clear (a run that stays RUNNING).
GATE = threading.Event()


def gated() -> ScriptedChatModel:
    inner = scripted(verification_order=["style_checker"])

    def handler(messages, tools):  # type: ignore[no-untyped-def]
        assert GATE.wait(30), "the test never opened the gate"
        return inner.handler(messages, tools)

    return ScriptedChatModel(handler=handler, calls=inner.calls)


PAUSE = "mutation($id: ID!) { pauseTask(id: $id) { status pauseRequested } }"
RESUME = "mutation($id: ID!) { resumeTask(id: $id) { status } }"


@pytest.mark.parametrize("model", [gated], indirect=True)
async def test_pause_and_resume_a_running_task_through_graphql(client: GraphQLClient) -> None:
    GATE.clear()
    try:
        task_id = await start(client)
        await events_until(client, task_id, "RUNNING")
        asked = (await client.execute(PAUSE, {"id": task_id}))["pauseTask"]
        assert asked == {"status": "RUNNING", "pauseRequested": True}
        GATE.set()  # the node at work finishes; the run stops at the next boundary
        events = await events_until(client, task_id, "PAUSED")
        assert not events[-1]["isTerminal"]
        assert any(e["kind"] == "PAUSE_REQUESTED" for e in events)
        task = (await client.execute(TASK, {"id": task_id}))["task"]
        assert task["status"] == "PAUSED" and not task["pauseRequested"]
        code, _ = await error_code(client.execute(REVIEW, {"id": task_id, "decision": "APPROVE"}))
        assert code == "CONFLICT"  # nothing awaits review
        resumed = (await client.execute(RESUME, {"id": task_id}))["resumeTask"]
        assert resumed["status"] in ("PENDING", "RUNNING")
        code, _ = await error_code(client.execute(RESUME, {"id": task_id}))
        assert code == "CONFLICT"  # only a PAUSED task resumes
        events = await events_until(client, task_id, "COMPLETED")
    finally:
        GATE.set()
    statuses = [e["status"] for e in events if e["kind"] == "TASK_STATUS"]
    assert statuses == ["RUNNING", "PAUSED", "PENDING", "RUNNING", "COMPLETED"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_a_task_awaiting_review_can_be_cancelled(client: GraphQLClient) -> None:
    task_id = await start(client, review="ALWAYS")
    await events_until(client, task_id, "AWAITING_REVIEW")
    cancel = "mutation($id: ID!) { cancelTask(id: $id) { status } }"
    assert (await client.execute(cancel, {"id": task_id}))["cancelTask"]["status"] == "CANCELLED"
    code, _ = await error_code(client.execute(REVIEW, {"id": task_id, "decision": "APPROVE"}))
    assert code == "CONFLICT"


async def test_a_follow_up_revision_through_graphql(
    client: GraphQLClient, model: ScriptedChatModel
) -> None:
    first = await start(client)
    await events_until(client, first, "COMPLETED")
    code, _ = await error_code(client.execute(PAUSE, {"id": first}))
    assert code == "CONFLICT"  # a finished task cannot be paused
    research = sum("PaperResearcher" in system_text(c["messages"]) for c in model.calls)
    revise = """mutation($id: ID!, $feedback: String!) {
      revisePost(taskId: $id, feedback: $feedback) { id status parentId revisionOf } }"""
    child = (await client.execute(revise, {"id": first, "feedback": "Mention the dataset."}))[
        "revisePost"
    ]
    assert (child["parentId"], child["revisionOf"]) == (first, first)
    await events_until(client, child["id"], "COMPLETED")
    assert sum("PaperResearcher" in system_text(c["messages"]) for c in model.calls) == research
    task = (await client.execute(TASK, {"id": child["id"]}))["task"]
    assert [t["id"] for t in task["history"]] == [first, child["id"]]
    assert task["revisions"] == 1
    code, _ = await error_code(client.execute(revise, {"id": "missing", "feedback": "x"}))
    assert code == "NOT_FOUND"
    nested = "{ tasks(first: 20) { edges { node { history { history { id } } } } } }"
    code, extensions = await error_code(client.execute(nested))
    assert (code, extensions.get("limit")) == ("GRAPHQL_VALIDATION_FAILED", "cost")


async def test_a_review_is_answered_after_the_server_restarted(
    sqlite_url: str, model: ScriptedChatModel
) -> None:
    settings = Settings(database_url=sqlite_url, follow_poll_seconds=0.5, _env_file=None)

    @contextlib.asynccontextmanager
    async def serving() -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, model_factory=lambda: model)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                yield http

    async def gql(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
        body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in body, body
        return body["data"]

    async def status(http: httpx.AsyncClient, task_id: str, wanted: str) -> dict[str, Any]:
        async with asyncio.timeout(WITHIN):
            while (task := (await gql(http, TASK, id=task_id))["task"])["status"] != wanted:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return task

    async with serving() as http:
        task_id = (await gql(http, GENERATE, input={**PAPER, "review": "ALWAYS"}))["generatePost"][
            "id"
        ]
        await status(http, task_id, "AWAITING_REVIEW")
    async with serving() as http:  # a new process's worth of server: the run lives on disk
        await gql(http, REVIEW, id=task_id, decision="REVISE", feedback="Shorter.", expected=0)
        again = await status(http, task_id, "AWAITING_REVIEW")
        assert again["revisions"] == 1
        await gql(http, REVIEW, id=task_id, decision="APPROVE", expected=1)
        assert (await status(http, task_id, "COMPLETED"))["result"]["content"]


async def test_parallel_verifiers_run_at_once_with_both_reports_and_a_gapless_log(
    client: GraphQLClient,
) -> None:
    task_id = await start(client, orchestrationMode="PARALLEL")
    events = await events_until(client, task_id, "COMPLETED")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    fan_out = [e for e in events if e["kind"] == "ROUTING" and e["data"]["next"] == "all_verifiers"]
    assert len(fan_out) == 1 and fan_out[0]["agent"] == "verification_supervisor"
    verifiers = ("tech_verifier", "style_checker")
    starts = [e["seq"] for e in events if e["kind"] == "AGENT_STARTED" and e["agent"] in verifiers]
    ends = [e["seq"] for e in events if e["kind"] == "AGENT_FINISHED" and e["agent"] in verifiers]
    assert len(starts) == len(ends) == 2 and max(starts) < min(ends)  # both ran at once
    task = (await client.execute(TASK, {"id": task_id}))["task"]
    assert {r["agent"] for r in task["verificationReports"]} == set(verifiers)
    finished = next(e for e in reversed(events) if e["kind"] == "TEAM_FINISHED")
    assert finished["team"] == "verification_team" and finished["progress"] < 1.0
    assert events[-1]["progress"] == 1.0
