"""The `postassist` command against a live server (scripted model)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from graph.cli import app
from tests.fakes import ScriptedChatModel, scripted

pytestmark = pytest.mark.anyio

ARGS = [
    "generate",
    "Attention Is All You Need",
    "--context",
    "The Transformer relies on attention alone. It reaches 28.4 BLEU on WMT 2014.",
]


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
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
