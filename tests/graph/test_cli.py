"""The `postassist` command against a live server (scripted model)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from graph.cli import app

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
