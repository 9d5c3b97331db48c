"""The `postassist` command against a live server (scripted model), its `keys`
commands on a real SQLite file, and `GraphQLClient`'s API key over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.llm.local_server import free_port
from db.engine import create_engine, create_session_factory
from db.keys import create_key, find_key
from db.models import ApiKey
from graph.cli.client import GENERATE_POST, TASK_PROGRESS, GraphQLClient, GraphQLClientError
from graph.cli.main import app
from graph.settings import get_settings
from tests.fakes import ScriptedChatModel, scripted
from tests.processes import console_script

pytestmark = pytest.mark.anyio

ARGS = [
    "generate",
    "Attention Is All You Need",
    "--context",
    "The Transformer relies on attention alone. It reaches 28.4 BLEU on WMT 2014.",
]


async def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def test_generate_shows_the_post_hashtags_and_both_reports(
    live_server: Callable[[str], str],
) -> None:
    code, out, err = await invoke(*ARGS, "--url", f"http://{live_server('/graphql')}")
    assert code == 0, out + err
    assert "LinkedIn post" in out and "#" in out
    assert "tech_verifier" in out and "style_checker" in out
    assert "LLM calls" in out
    assert "content_supervisor -> paper_researcher" in err  # live routing decisions
    # off a terminal the live view is drawn once, at the end, and ends its last line
    assert err.endswith("\n") and "StyleChecker" in err.splitlines()[-1]


async def test_generate_json_is_machine_readable(live_server: Callable[[str], str]) -> None:
    code, out, _ = await invoke(
        *ARGS, "--json", "--max-hashtags", "3", "--url", f"http://{live_server('/graphql')}"
    )
    task = json.loads(out)
    assert code == 0 and task["status"] == "COMPLETED"
    assert 0 < len(task["result"]["hashtags"]) <= 3


async def test_generate_reports_bad_input_and_unreachable_servers(
    live_server: Callable[[str], str],
) -> None:
    code, _, err = await invoke("generate", "GPT", "--url", f"http://{live_server('/graphql')}")
    assert code == 2 and "BAD_USER_INPUT" in err
    code, _, err = await invoke(*ARGS, "--url", "http://127.0.0.1:9/graphql")
    assert code == 3 and "cannot reach" in err


async def test_a_url_without_the_graphql_path_says_which_path_it_tried(
    live_server: Callable[[str], str],
) -> None:
    root = f"http://{live_server('')}"
    with pytest.raises(GraphQLClientError) as refused:
        await GraphQLClient(root).execute("{ __typename }")
    assert refused.value.code == "BAD_RESPONSE"
    assert re.fullmatch(  # 404, or 405 where the app answers GET / (its landing page)
        rf"BAD_RESPONSE: {root} did not answer with GraphQL \(HTTP 40[45] for path /\); "
        rf"the GraphQL endpoint is at /graphql: try {root}/graphql",
        str(refused.value),
    ), refused.value
    code, out, err = await invoke(*ARGS, "--url", root + "/api/")
    message = " ".join(err.split())  # Rich wraps it at the terminal's width
    assert code == 2 and out == "", err
    assert "for path /api/)" in message and f"try {root}/api/graphql" in message


async def test_a_wrong_path_ending_in_graphql_gets_no_hint(
    live_server: Callable[[str], str],
) -> None:
    url = f"http://{live_server('/v2/graphql')}"
    with pytest.raises(GraphQLClientError) as refused:
        await GraphQLClient(url).execute("{ __typename }")
    assert str(refused.value).endswith("(HTTP 404 for path /v2/graphql)")


class TestAPostTheVerifiersReject:
    @pytest.fixture
    def model(self) -> ScriptedChatModel:
        return scripted(approve=False)

    async def test_is_shown_in_red_with_its_issues_and_exits_0(
        self, live_server: Callable[[str], str]
    ) -> None:
        url = f"http://{live_server('/graphql')}"
        code, out, err = await invoke(*ARGS, "--url", url)
        assert code == 0, out + err
        assert "NOT APPROVED" in out and "warning: the verifiers did not approve" in out
        assert "needs work" in out  # the open issue the scripted verifier named
        code, out, _ = await invoke(*ARGS, "--json", "--url", url)
        task = json.loads(out)
        assert task["approved"] is False and task["result"]["approved"] is False
        assert "needs work" in task["result"]["openIssues"]


# --- postassist keys ---------------------------------------------------------------

TOKEN = re.compile(r"pa_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def database(sqlite_url: str) -> Iterator[str]:
    """DATABASE_URL for the `keys` commands: a SQLite file they create and migrate.
    `get_settings` is cached per process, so it is cleared around each test."""
    get_settings.cache_clear()
    yield sqlite_url
    get_settings.cache_clear()


async def keys_cli(database: str, *args: str) -> tuple[int, str, str]:
    return await invoke("keys", *args, env={"DATABASE_URL": database})


async def create(database: str, name: str, *flags: str) -> str:
    code, out, err = await keys_cli(database, "create", "--name", name, *flags)
    assert code == 0, out + err
    return out.strip()


async def lookup(database: str, token: str) -> ApiKey | None:
    engine = create_engine(database)
    try:
        async with create_session_factory(engine)() as session:
            return await find_key(session=session, token=token)
    finally:
        await engine.dispose()


def database_bytes(database: str) -> bytes:
    """The SQLite file and any -wal/-shm beside it."""
    path = Path(database.removeprefix("sqlite+aiosqlite:///"))
    return b"".join(file.read_bytes() for file in sorted(path.parent.glob(path.name + "*")))


async def test_keys_create_prints_the_token_alone_and_stores_only_its_sha256(
    database: str,
) -> None:
    code, out, err = await keys_cli(database, "create", "--name", "ci")
    assert code == 0, out + err
    token = out.strip()
    assert out == token + "\n" and TOKEN.fullmatch(token), out  # KEY=$(...) gets the token
    key_id = token.split("_")[1]
    assert key_id in err and "'ci'" in err and "not admin" in err
    assert "store it now: it is not shown again" in err and token not in err

    key = await lookup(database, token)
    assert key is not None and key.id == key_id and key.name == "ci" and not key.admin
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert key.secret_hash == digest
    stored = database_bytes(database)
    assert digest.encode() in stored
    assert token.encode() not in stored and token.split("_", 2)[2].encode() not in stored


async def test_keys_create_admin_makes_an_admin_key(database: str) -> None:
    key = await lookup(database, await create(database, "ops", "--admin"))
    assert key is not None and key.admin


@pytest.mark.parametrize("name", ["", "   "])
async def test_keys_create_refuses_a_blank_name(database: str, name: str) -> None:
    code, out, err = await keys_cli(database, "create", "--name", name)
    assert code == 2 and out == ""
    assert "Invalid value" in err and "--name" in err


async def test_keys_list_shows_names_never_tokens(database: str) -> None:
    code, out, err = await keys_cli(database, "list")
    assert code == 0 and "no API keys yet" in err
    ci = await create(database, "ci-bot")
    ops = await create(database, "ops", "--admin")
    secrets = [ci, ops, *(hashlib.sha256(t.encode()).hexdigest() for t in (ci, ops))]

    code, out, err = await keys_cli(database, "list")
    assert code == 0, out + err
    assert "ci-bot" in out and "ops" in out and ci.split("_")[1] in out
    assert not any(secret in out + err for secret in secrets)

    code, out, _ = await keys_cli(database, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [row["name"] for row in rows] == ["ci-bot", "ops"]
    assert [row["admin"] for row in rows] == [False, True]
    assert [row["id"] for row in rows] == [ci.split("_")[1], ops.split("_")[1]]
    assert all(set(row) == {"id", "name", "admin", "created_at", "revoked_at"} for row in rows)
    assert all(row["created_at"] and row["revoked_at"] is None for row in rows)
    assert not any(secret in out for secret in secrets)


async def test_keys_revoke_stops_the_key_and_may_be_repeated(database: str) -> None:
    token = await create(database, "ci")
    key_id = token.split("_")[1]
    assert await lookup(database, token) is not None

    code, out, err = await keys_cli(database, "revoke", key_id)
    assert code == 0 and out == "" and "revoked" in err and key_id in err
    assert await lookup(database, token) is None

    code, _, err = await keys_cli(database, "revoke", key_id)
    assert code == 0 and "already revoked" in err
    code, out, _ = await keys_cli(database, "list", "--json")
    assert json.loads(out)[0]["revoked_at"] is not None


async def test_keys_revoke_of_an_unknown_id_exits_1(database: str) -> None:
    await create(database, "ci")
    code, out, err = await keys_cli(database, "revoke", "deadbeef")
    assert code == 1 and out == ""
    assert "no API key has id 'deadbeef'" in err


# --- the client's API key against a live server (local mode checks sent tokens) -----


async def create_api_key(database: str, name: str, *, admin: bool = False) -> str:
    engine = create_engine(database)
    try:
        async with create_session_factory(engine)() as session:
            return (await create_key(session=session, name=name, admin=admin))[1]
    finally:
        await engine.dispose()


GENERATE_VARIABLES = {
    "input": {
        "paperTitle": "Attention Is All You Need",
        "additionalContext": "The Transformer relies on attention alone. 28.4 BLEU on WMT 2014.",
    }
}
OWNER = "query($id: ID!) { task(id: $id) { owner status } }"


async def events(client: GraphQLClient, task_id: str) -> list[dict[str, Any]]:
    received = []
    async with asyncio.timeout(20):
        async for data in client.subscribe(TASK_PROGRESS, {"taskId": task_id, "afterSeq": 0}):
            received.append(data["taskProgress"])
    return received


async def test_a_bad_api_key_is_refused_over_http_and_websocket(
    live_server: Callable[[str], str],
) -> None:
    client = GraphQLClient(f"http://{live_server('/graphql')}", api_key="pa_00000000_wrong")
    with pytest.raises(GraphQLClientError) as refused:
        await client.execute("{ __typename }")
    assert refused.value.code == "UNAUTHENTICATED" and "not valid" in str(refused.value)

    with pytest.raises(GraphQLClientError) as refused:
        await events(client, "any")
    assert refused.value.code == "UNAUTHENTICATED" and "not valid" in str(refused.value)

    code, _, err = await invoke(
        *ARGS, "--url", client.url, env={"POSTASSIST_API_KEY": "pa_00000000_wrong"}
    )
    assert code == 2 and "UNAUTHENTICATED" in err and "--api-key" in err


async def test_a_good_api_key_is_the_principal_over_http_and_websocket(
    live_server: Callable[[str], str], sqlite_url: str
) -> None:
    url = f"http://{live_server('/graphql')}"
    token = await create_api_key(sqlite_url, "ci")
    other = GraphQLClient(url, api_key=await create_api_key(sqlite_url, "someone else"))
    client = GraphQLClient(url, api_key=token)
    assert client.headers == {"Authorization": f"Bearer {token}"}

    task = (await client.execute(GENERATE_POST, GENERATE_VARIABLES))["generatePost"]
    received = await events(client, task["id"])
    assert received and received[-1]["isTerminal"] and received[-1]["status"] == "COMPLETED"
    answer = (await client.execute(OWNER, {"id": task["id"]}))["task"]
    assert answer == {"owner": f"key:{token.split('_')[1]}", "status": "COMPLETED"}

    # another key's principal sees nothing of it, over HTTP and over the WebSocket
    assert (await other.execute(OWNER, {"id": task["id"]}))["task"] is None
    with pytest.raises(GraphQLClientError) as hidden:
        await events(other, task["id"])
    assert hidden.value.code == "NOT_FOUND"

    code, out, err = await invoke(*ARGS, "--json", "--url", url, "--api-key", token)
    assert code == 0 and json.loads(out)["status"] == "COMPLETED", err


def test_serve_on_a_public_address_without_auth_refuses_to_start(tmp_path: Path) -> None:
    """The real `postassist serve --host 0.0.0.0`: no key, no JWT, no AUTH_DISABLED."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'public.db'}",
        "LLM_PROVIDER": "openai",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "RUN_WORKER": "false",
    }
    done = subprocess.run(
        [console_script(), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr


def test_serve_shows_the_services_own_log_lines_at_log_level() -> None:
    """uvicorn configures only its own loggers: without `_configure_logging`, the app's
    INFO lines (a 401's reason, a client leaving mid-body) were never printed."""
    import logging

    from graph.cli.serve import OWN_LOGGERS, _configure_logging

    saved = {name: logging.getLogger(name).level for name in OWN_LOGGERS}
    try:
        _configure_logging(get_settings().model_copy(update={"log_level": "debug"}))
        assert logging.getLogger("graph.app").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("agents.runtime.worker").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("dbos").isEnabledFor(logging.INFO)  # libraries: WARNING
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
