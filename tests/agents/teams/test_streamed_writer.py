"""The writer streams its sentences only when the run publishes drafts
(`RunContext.drafts`, set from `Executor.drafts`): without, every call of the run is
made unstreamed, as before drafts existed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from broadcaster import Broadcast
from langchain_core.outputs import ChatGenerationChunk

from agents.teams.hierarchy import RECURSION_LIMIT, build_graph
from agents.teams.nodes import RunContext
from agents.teams.state import initial_state
from db.drafts import DraftPublisher
from db.models import PostRequest
from tests.fakes import ScriptedChatModel, scripted

pytestmark = pytest.mark.anyio

REQUEST = PostRequest(
    paper_title="Attention Is All You Need",
    additional_context="The Transformer relies on attention alone, without recurrence.",
)


class Recording(ScriptedChatModel):
    """The scripted model, noting the tools of each streamed call in `streamed`."""

    streamed: list[list[str]] = []

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        self.streamed.append(kwargs.get("tool_names") or [])
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def recording() -> Recording:
    plays = scripted()
    return Recording(handler=plays.handler, calls=[], streamed=[])


async def run(model: Recording, drafts: DraftPublisher | None) -> dict[str, Any]:
    return await build_graph().ainvoke(
        initial_state(REQUEST, max_revisions=0),
        {"recursion_limit": RECURSION_LIMIT},
        context=RunContext(model=model, drafts=drafts),
    )


async def test_without_drafts_no_call_streams_and_with_them_the_sentences_do() -> None:
    quiet = recording()
    without = await run(quiet, None)
    assert quiet.calls and quiet.streamed == []

    bus = Broadcast("memory://")
    await bus.connect()
    try:
        live = recording()
        with_drafts = await run(live, DraftPublisher(bus, "t"))
    finally:
        await bus.disconnect()
    assert {tool for tools in live.streamed for tool in tools} == {
        "WrittenSentence",
        "WrittenQuestion",
    }
    assert without["draft"] == with_drafts["draft"]
