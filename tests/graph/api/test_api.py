"""The GraphQL API through the ASGI app: mutations, queries with cursors, error codes."""

from __future__ import annotations

import pytest

from graph.api.pagination import encode_cursor
from tests.graph.conftest import GQL

pytestmark = pytest.mark.anyio

GENERATE = """
mutation($input: GeneratePostInput!) {
  generatePost(input: $input) {
    id status progress kind
    teams { name status agents { name status } }
  }
}"""
INPUT = {
    "paperTitle": "Attention Is All You Need",
    "additionalContext": "The Transformer relies on attention alone. It reaches 28.4 BLEU on "
    "WMT 2014 English-to-German.",
}
TASK = """
query($id: ID!) {
  task(id: $id) {
    status progress currentTeam revisions lastSeq
    result { content hashtags wordCount characterCount }
    researchNotes { summary keyInsights metrics }
    verificationReports { agent kind score approved issues }
    usage { llmCalls totalTokens }
    teams { name status progress startedAt completedAt
            agents { name status progress currentActivity lastUpdate } }
    error { code message }
  }
}"""


async def generate(gql: GQL, **overrides: object) -> str:
    body = await gql(GENERATE, input={**INPUT, **overrides})
    assert "errors" not in body, body
    return body["data"]["generatePost"]["id"]


async def test_generate_post_runs_the_teams_and_the_task_tells_what_happened(gql: GQL) -> None:
    body = await gql(GENERATE, input=INPUT)
    task = body["data"]["generatePost"]
    assert task["status"] == "PENDING" and task["kind"] == "GENERATE"
    assert [t["name"] for t in task["teams"]] == ["content_team", "verification_team"]
    assert {a["status"] for t in task["teams"] for a in t["agents"]} == {"IDLE"}

    finished = await gql.wait_until_finished(task["id"])
    assert finished["status"] == "COMPLETED"
    done = (await gql(TASK, id=task["id"]))["data"]["task"]
    assert done["progress"] == 1.0 and done["currentTeam"] is None
    assert done["result"]["characterCount"] == len(done["result"]["content"]) <= 3000
    assert done["result"]["hashtags"] and "28.4" in done["researchNotes"]["metrics"]
    assert {r["agent"] for r in done["verificationReports"]} == {"tech_verifier", "style_checker"}
    assert done["usage"]["llmCalls"] > 0 and done["usage"]["totalTokens"] > 0
    for team in done["teams"]:
        assert team["status"] == "COMPLETED" and team["progress"] == 1.0
        assert team["startedAt"] and team["completedAt"]
        assert {a["status"] for a in team["agents"]} == {"COMPLETED"}


async def test_agent_logs_pages_with_cursors_and_filters(gql: GQL) -> None:
    task_id = await generate(gql)
    last_seq = (await gql.wait_until_finished(task_id))["lastSeq"]
    query = """
    query($id: ID!, $after: String, $agent: String) {
      agentLogs(taskId: $id, first: 7, after: $after, agent: $agent) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { seq kind agent } }
      }
    }"""
    seqs, after = [], None
    while True:
        page = (await gql(query, id=task_id, after=after))["data"]["agentLogs"]
        assert page["totalCount"] == last_seq
        seqs += [e["node"]["seq"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seqs == list(range(1, last_seq + 1))

    only = (await gql(query, id=task_id, agent="style_checker"))["data"]["agentLogs"]
    assert only["edges"] and {e["node"]["agent"] for e in only["edges"]} == {"style_checker"}
    kinds = {e["node"]["kind"] for e in only["edges"]}
    assert {"AGENT_STARTED", "TOOL_CALL", "AGENT_FINISHED", "LLM_USAGE"} <= kinds


async def test_tasks_connection_newest_first_with_status_filter(gql: GQL) -> None:
    ids = [await generate(gql, paperTitle=f"Paper number {i}") for i in range(3)]
    for task_id in ids:
        await gql.wait_until_finished(task_id)
    query = """
    query($after: String, $status: TaskStatus) {
      tasks(first: 2, after: $after, status: $status) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { node { id paperTitle } }
      }
    }"""
    first = (await gql(query))["data"]["tasks"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"]
    second = (await gql(query, after=first["pageInfo"]["endCursor"]))["data"]["tasks"]
    assert not second["pageInfo"]["hasNextPage"] and second["pageInfo"]["hasPreviousPage"]
    listed = [e["node"]["id"] for e in first["edges"] + second["edges"]]
    assert listed == list(reversed(ids))
    none = (await gql(query, status="FAILED"))["data"]["tasks"]
    assert none["totalCount"] == 0 and none["edges"] == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"paperTitle": "GPT"}, "paperTitle"),
        ({"paperTitle": "x" * 501}, "paperTitle"),
        ({"maxHashtags": 0}, "maxHashtags"),
        ({"maxHashtags": 21}, "maxHashtags"),
        ({"additionalContext": "y" * 10_001}, "additionalContext"),
        ({"targetAudience": "  "}, "targetAudience"),
    ],
)
async def test_invalid_input_is_bad_user_input_and_creates_nothing(
    gql: GQL, override: dict, field: str
) -> None:
    body = await gql(GENERATE, input={**INPUT, **override})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    count = await gql("{ tasks { totalCount } }")
    assert count["data"]["tasks"]["totalCount"] == 0


async def test_error_codes_for_unknown_ids_bad_cursors_and_graphql_errors(gql: GQL) -> None:
    assert (await gql(TASK, id="nope"))["data"]["task"] is None
    logs = await gql('{ agentLogs(taskId: "nope") { totalCount } }')
    assert logs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    cancel = await gql('mutation { cancelTask(id: "nope") { id } }')
    assert cancel["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    cursor = await gql('{ tasks(after: "garbage") { totalCount } }')
    assert cursor["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    for forged in (encode_cursor("task", "not-a-date", "x"), encode_cursor("log", "x")):
        body = await gql("query($c: String) { tasks(after: $c) { totalCount } }", c=forged)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    task_id = await generate(gql)
    forged_log = encode_cursor("log", "seven")
    body = await gql(
        "query($id: ID!, $c: String) { agentLogs(taskId: $id, after: $c) { totalCount } }",
        id=task_id,
        c=forged_log,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    first = await gql("{ tasks(first: 0) { totalCount } }")
    assert first["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = await gql("{ nonsense }")
    assert unknown["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_cancelling_a_finished_task_is_a_conflict(gql: GQL) -> None:
    task_id = await generate(gql)
    await gql.wait_until_finished(task_id)
    body = await gql("mutation($id: ID!) { cancelTask(id: $id) { status } }", id=task_id)
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_verify_post_runs_the_verification_team_alone(gql: GQL) -> None:
    query = """
    mutation($input: VerifyPostInput!) {
      verifyPost(input: $input) { agent kind score approved issues checks }
    }"""
    post = "Attention is all you need.\n\nIt reaches 99.9 BLEU. Thoughts?\n\n#AI"
    body = await gql(
        query,
        input={
            "content": post,
            "paperTitle": INPUT["paperTitle"],
            "additionalContext": INPUT["additionalContext"],
        },
    )
    reports = {r["agent"]: r for r in body["data"]["verifyPost"]}
    assert set(reports) == {"tech_verifier", "style_checker"}
    assert not reports["tech_verifier"]["approved"]
    claims = reports["tech_verifier"]["checks"]["unsupported_claims"]
    assert [c["sentence"] for c in claims] == ["It reaches 99.9 BLEU."]
    assert any("99.9 BLEU" in issue for issue in reports["tech_verifier"]["issues"])
    assert reports["style_checker"]["approved"]
    tasks = await gql("{ tasks { edges { node { kind status } } } }")
    assert tasks["data"]["tasks"]["edges"] == [{"node": {"kind": "VERIFY", "status": "COMPLETED"}}]


async def test_teams_and_health(gql: GQL) -> None:
    body = await gql(
        "{ teams { name supervisor agents { name displayName } } "
        "health { status database model { ready } } }"
    )
    teams = body["data"]["teams"]
    assert [(t["name"], t["supervisor"]) for t in teams] == [
        ("content_team", "content_supervisor"),
        ("verification_team", "verification_supervisor"),
    ]
    assert [a["displayName"] for a in teams[0]["agents"]] == ["PaperResearcher", "LinkedInCreator"]
    assert body["data"]["health"] == {"status": "ok", "database": True, "model": {"ready": True}}


async def test_unexpected_errors_are_masked(gql: GQL, monkeypatch: pytest.MonkeyPatch) -> None:
    from db import repository

    async def broken(**_: object) -> None:
        raise RuntimeError("secret connection string postgres://user:pw@db")

    monkeypatch.setattr(repository, "get_task", broken)
    body = await gql(TASK, id="x")
    error = body["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert set(error["extensions"]) == {"code", "requestId"}  # the id is in the server log
    assert "secret" not in str(body)


async def test_a_busy_database_pool_is_service_unavailable(
    gql: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy.exc

    from db import repository

    async def busy(**_: object) -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")

    monkeypatch.setattr(repository, "get_task", busy)
    body = await gql(TASK, id="x")
    error = body["errors"][0]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
    assert "QueuePool" not in str(body)


async def test_tasks_filter_by_approval(gql: GQL) -> None:
    task_id = await generate(gql)
    await gql.wait_until_finished(task_id)
    query = "query($a: Boolean) { tasks(approved: $a) { totalCount edges { node { approved } } } }"
    approved = (await gql(query, a=True))["data"]["tasks"]
    assert approved["totalCount"] == 1 and approved["edges"][0]["node"]["approved"] is True
    assert (await gql(query, a=False))["data"]["tasks"]["totalCount"] == 0
    result = await gql(
        "query($id: ID!) { task(id: $id) { result { approved openIssues } } }", id=task_id
    )
    assert result["data"]["task"]["result"] == {"approved": True, "openIssues": []}


async def test_tasks_filter_by_kind(gql: GQL) -> None:
    generated = await generate(gql)
    await gql.wait_until_finished(generated)
    verify = "mutation($input: VerifyPostInput!) { verifyPost(input: $input) { agent } }"
    post = {"content": "Attention is all you need.\n\nThoughts?\n\n#AI", **INPUT}
    assert "errors" not in await gql(verify, input=post)
    query = "query($k: TaskKind) { tasks(kind: $k) { totalCount edges { node { id kind } } } }"
    everything = (await gql(query))["data"]["tasks"]
    assert everything["totalCount"] == 2
    for kind in ("VERIFY", "GENERATE"):
        listed = (await gql(query, k=kind))["data"]["tasks"]
        assert listed["totalCount"] == 1, (kind, listed)
        assert [e["node"]["kind"] for e in listed["edges"]] == [kind]
    generate_only = (await gql(query, k="GENERATE"))["data"]["tasks"]["edges"]
    assert generate_only[0]["node"]["id"] == generated
    inline = await gql("{ tasks(kind: VERIFY, status: COMPLETED) { totalCount } }")
    assert inline["data"]["tasks"]["totalCount"] == 1
