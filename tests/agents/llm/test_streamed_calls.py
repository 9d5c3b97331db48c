"""Streamed structured-output calls (`Reporter.judge(on_text=...)` through
`BoundedChatOpenAI.around_stream`) retry as unstreamed calls do: a timeout is tried once
more with half the output tokens, a broken connection is sent again once the model is
back (at most `MAX_RESENDS` times), and a stream that broke after its first chunk starts
over, its text replaced in the published draft. A call out of retries fails with the
error, and so the task's FailureCode, of the unstreamed call.

The endpoint is a real HTTP server on a socket that plays a script per completion:
answer, hang before or after some chunks, or close the connection before or after them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from broadcaster import Broadcast
from langchain_core.messages import HumanMessage

from agents.llm.calls import MAX_RESENDS, ModelTimeoutError
from agents.llm.chat import build_chat_model, endpoint_probe
from agents.llm.gate import ModelGate, ModelState
from agents.runtime.execution import Executor
from agents.teams.live_draft import LiveDraft
from agents.teams.nodes import Reporter, RunContext
from agents.teams.writer import WrittenSentence
from db.drafts import DraftDelta, DraftPublisher, subscribe_drafts
from db.enums import EventKind, FailureCode
from db.events import Event
from tests.agents.llm.scripted_endpoint import (
    ANSWER,
    BROKEN,
    PIECE,
    SENTENCE_TOKENS,
    USAGE,
    ScriptedEndpoint,
    endpoint,
)

pytestmark = pytest.mark.anyio


@dataclass
class Run:
    """One judged call's outcome: `answer` (the parsed sentence, or None), `error`, the
    endpoint's `requests`, the `events` reported, the draft `deltas` published, the
    model's `gate`."""

    answer: str | None
    error: BaseException | None
    requests: list[dict[str, Any]]
    events: list[Event]
    deltas: list[DraftDelta]
    gate: ModelGate

    @property
    def shown(self) -> str:
        """The draft as a subscriber has it: the chunks since the last replace."""
        last = max(i for i, d in enumerate(self.deltas) if d.replace)
        return "".join(d.text for d in self.deltas[last:])

    def history(self) -> list[str]:
        """The draft a subscriber had after each replace, and at the end: the text each
        replace started, with what was appended to it up to the next."""
        texts: list[str] = []
        for delta in self.deltas:
            if delta.replace or not texts:
                texts.append("")
            texts[-1] += delta.text
        return texts

    def usage(self) -> dict[str, Any]:
        (usage,) = [e.data for e in self.events if e.kind == EventKind.LLM_USAGE]
        return usage


async def judge(plays: list[str], *, streamed: bool = True, usage: bool = True) -> Run:
    """One sentence call on an endpoint playing `plays`, streamed into a live draft
    (published on the memory bus and read back by a subscriber) or not."""
    script = ScriptedEndpoint(plays, usage=usage)
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    bus = Broadcast("memory://")
    await bus.connect()
    try:
        async with endpoint(script) as config, subscribe_drafts(bus, "t") as deltas:
            gate = ModelGate(unavailable_after=30, probe=endpoint_probe(config))
            publisher = DraftPublisher(bus, "t", interval=0.001)
            live = LiveDraft(publisher)
            context = RunContext(model=build_chat_model(config, gate=gate), emit=emit)
            reporter = Reporter(context, "content_team", "linkedin_creator")
            on_text = ("sentence", live.writing("", [], "", role="hook")) if streamed else None
            answer, error = None, None
            try:
                parsed, _why = await asyncio.wait_for(
                    reporter.judge(
                        WrittenSentence,
                        [HumanMessage("Write the hook.")],
                        purpose="hook sentence",
                        max_tokens=SENTENCE_TOKENS,
                        on_text=on_text,
                    ),
                    30,
                )
                answer = parsed.sentence if parsed is not None else None
            except Exception as exc:  # the test looks at it
                error = exc
            await publisher.flush()
            got: list[DraftDelta] = []
            with contextlib.suppress(TimeoutError):
                while True:
                    got.append(await asyncio.wait_for(anext(deltas), 0.3))
    finally:
        await bus.disconnect()
    return Run(answer, error, script.requests, events, got, gate)


class Failures:
    """The `append` of a failing run: records `fail(code, message, retryable=...)`."""

    def __init__(self) -> None:
        self.failed: list[tuple[FailureCode, bool]] = []

    async def fail(self, code: FailureCode, message: str, *, retryable: bool) -> None:
        self.failed.append((code, retryable))


async def failure_of(exc: BaseException) -> tuple[FailureCode, bool]:
    """How the executor fails a task whose run raised `exc` (`Executor._fail`)."""
    executor = Executor(event_log=None, model_factory=None, checkpointer=None, worker_id="w")  # type: ignore[arg-type]
    append = Failures()

    @dataclass
    class Task:
        id: str = "t"

    await executor._fail(Task(), append, exc)  # type: ignore[arg-type]
    return append.failed[0]


def answer_chunks() -> int:
    return math.ceil(len(json.dumps({"sentence": ANSWER})) / PIECE)


async def test_a_stream_that_times_out_before_its_first_chunk_is_tried_with_half_the_tokens() -> (
    None
):
    run = await judge(["hang", "answer"])
    assert run.error is None and run.answer == ANSWER
    assert run.requests == [
        {"stream": True, "max_tokens": SENTENCE_TOKENS},
        {"stream": True, "max_tokens": SENTENCE_TOKENS // 2},
    ]
    assert run.shown == ANSWER
    assert run.usage()["output_tokens"] == USAGE["completion_tokens"]


async def test_a_stream_that_times_out_after_its_first_chunk_starts_over_and_is_replaced() -> None:
    """The broken attempt's text reached the subscriber; the retried call, with half
    the tokens, replaces it, and the usage is the answer's alone."""
    run = await judge(["stall:8", "answer"])
    assert run.error is None and run.answer == ANSWER
    assert [r["max_tokens"] for r in run.requests] == [SENTENCE_TOKENS, SENTENCE_TOKENS // 2]
    broken, *_, final = run.history()  # a replace started the answer's text afresh
    assert broken.startswith(BROKEN[:6]), "nothing broken was shown: the test tests nothing"
    assert final == run.shown == ANSWER
    usage = run.usage()
    assert usage["output_tokens"] == USAGE["completion_tokens"] and "estimated" not in usage


async def test_a_stream_cut_after_its_first_chunk_is_sent_again_once_the_model_is_back() -> None:
    """The connection breaks mid-stream: the gate marks the model down, its probe finds
    it back, the call is sent again with its tokens; without usage in the stream the
    estimate counts the answer's chunks only."""
    run = await judge(["cut:8", "drop", "answer"], usage=False)
    assert run.error is None and run.answer == ANSWER
    assert [r["max_tokens"] for r in run.requests] == [SENTENCE_TOKENS] * 3
    assert run.shown == ANSWER
    usage = run.usage()
    assert usage["estimated"] is True and usage["output_tokens"] == answer_chunks()
    assert run.gate.status().state == ModelState.READY


@pytest.mark.parametrize(
    "plays", [["stall:8"], ["hang", "stall:8"], ["stall:8", "hang"]], ids=lambda p: "+".join(p)
)
async def test_a_second_timeout_fails_the_stream_as_it_fails_an_unstreamed_call(
    plays: list[str],
) -> None:
    streamed = await judge(plays)
    unstreamed = await judge(["hang"], streamed=False)
    assert isinstance(streamed.error, ModelTimeoutError)
    assert isinstance(unstreamed.error, ModelTimeoutError)
    assert [r["max_tokens"] for r in streamed.requests] == [SENTENCE_TOKENS, SENTENCE_TOKENS // 2]
    assert [r["stream"] for r in unstreamed.requests] == [False, False]
    assert await failure_of(streamed.error) == await failure_of(unstreamed.error)
    assert await failure_of(streamed.error) == (FailureCode.MODEL_ERROR, True)


@pytest.mark.parametrize("plays", [["cut:8"], ["drop", "cut:8"]], ids=lambda p: "+".join(p))
async def test_a_stream_that_keeps_breaking_fails_as_an_unstreamed_call_does(
    plays: list[str],
) -> None:
    """Sent 1 + MAX_RESENDS times, then the unstreamed call's error: the task fails with
    MODEL_UNAVAILABLE either way (not INTERNAL_ERROR for httpx's mid-stream error)."""
    streamed = await judge(plays)
    unstreamed = await judge(["drop"], streamed=False)
    assert len(streamed.requests) == len(unstreamed.requests) == 1 + MAX_RESENDS
    assert isinstance(streamed.error, openai.APIConnectionError)
    assert isinstance(unstreamed.error, openai.APIConnectionError)
    assert await failure_of(streamed.error) == await failure_of(unstreamed.error)
    assert await failure_of(streamed.error) == (FailureCode.MODEL_UNAVAILABLE, True)


async def test_a_call_without_on_text_is_not_streamed() -> None:
    run = await judge(["hang", "answer"], streamed=False)
    assert run.answer == ANSWER and run.deltas == []
    assert run.requests == [
        {"stream": False, "max_tokens": SENTENCE_TOKENS},
        {"stream": False, "max_tokens": SENTENCE_TOKENS // 2},
    ]
    assert run.usage()["output_tokens"] == USAGE["completion_tokens"]
