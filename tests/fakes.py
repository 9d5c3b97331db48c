"""A scripted chat model for unit tests: `bind_tools` works, answers come from a handler."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

from agents.checks.compose import reader_voice

Handler = Callable[[list[BaseMessage], list[str]], AIMessage]
_ids = itertools.count(1)
USAGE = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}


def tool_call(name: str, **args: Any) -> AIMessage:
    """An AIMessage that calls tool `name` with `args` (what function calling returns)."""
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}],
        usage_metadata=USAGE,
    )


def text(content: str) -> AIMessage:
    """A plain-text AIMessage with usage."""
    return AIMessage(content=content, usage_metadata=USAGE)


class ScriptedChatModel(BaseChatModel):
    """Answers each call with `handler(messages, bound_tool_names)`; records the calls.

    `bind_tools` returns the model bound to the tools, so `with_structured_output(...,
    method="function_calling")` works (unlike `GenericFakeChatModel`).

    It streams too (`streaming=True`, as `agents.llm.streaming` sets it): the answer's
    text or tool-call arguments in pieces of `piece_chars` characters, `token_seconds`
    apart, the usage on the last chunk.
    """

    handler: Handler
    calls: list[dict[str, Any]] = []
    streaming: bool = False
    token_seconds: float = 0.0
    piece_chars: int = 4

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        names = []
        for t in tools:
            if isinstance(t, dict):
                names.append(t.get("function", t).get("name") or t.get("title"))
            else:
                names.append(getattr(t, "name", None) or t.__name__)
        return self.bind(tool_names=names, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        tool_names: list[str] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": messages, "tools": tool_names or [], "kwargs": kwargs})
        reply = self.handler(messages, tool_names or [])
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        tool_names: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls.append({"messages": messages, "tools": tool_names or [], "kwargs": kwargs})
        reply = self.handler(messages, tool_names or [])
        size = self.piece_chars
        if reply.tool_calls:
            call = reply.tool_calls[0]
            arguments = json.dumps(call["args"])
            for n, at in enumerate(range(0, len(arguments), size)):
                first = n == 0
                piece = {
                    "name": call["name"] if first else None,
                    "args": arguments[at : at + size],
                    "id": call["id"] if first else None,
                    "index": 0,
                }
                await asyncio.sleep(self.token_seconds)
                yield ChatGenerationChunk(
                    message=AIMessageChunk(content="", tool_call_chunks=[piece])
                )
        else:
            content = str(reply.content)
            for at in range(0, len(content), size):
                await asyncio.sleep(self.token_seconds)
                yield ChatGenerationChunk(message=AIMessageChunk(content=content[at : at + size]))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=reply.usage_metadata)
        )


def fact_of(messages: list[BaseMessage]) -> str:
    """The fact a writer's sentence call is about (its "Fact from the paper:" line)."""
    for line in str(messages[-1].content).splitlines():
        if line.startswith("Fact from the paper:"):
            return line.removeprefix("Fact from the paper:").strip()
    return ""


def system_text(messages: list[BaseMessage]) -> str:
    """The first message's text (the system prompt in every PostAssist call)."""
    return str(messages[0].content) if messages else ""


def scripted(
    *,
    verification_order: Sequence[str] = ("tech_verifier",),
    meta_choice: str = "content_team",
    content_choice: str = "linkedin_creator",
    approve: bool | Callable[[int], bool] = True,
    research: str = "SUMMARY: A model built on attention only.\nINSIGHTS:\n- Attention "
    "replaces recurrence.\nLIMITATIONS:\n- Quadratic cost in sequence length.",
    sentence: Callable[[str, int], str] | None = None,
    question: str = "What would you build with it?",
    token_seconds: float = 0.0,
) -> ScriptedChatModel:
    """A model that plays every role in a fixed way.

    - verification supervisor answers pop from `verification_order` (then repeat last);
    - the meta-supervisor answers `meta_choice` when asked, the content supervisor
      `content_choice`;
    - verifiers approve (`approve` may be a function of the judgement call number);
    - the writer's sentence for a fact is `sentence(fact, n)` (`n`: 0, 1, ... the
      sentence calls so far), by default the fact itself with "we" made "the authors";
      its closing question is `question`;
    - streamed calls send a piece every `token_seconds`.
    """
    order = list(verification_order)
    judgements = itertools.count()
    sentences = itertools.count()
    write = sentence or (lambda fact, _n: reader_voice(fact))

    def handler(messages: list[BaseMessage], tools: list[str]) -> AIMessage:
        system = system_text(messages)
        if "Route" in tools:
            if "meta-supervisor" in system:
                return tool_call("Route", next=meta_choice, reason="scripted meta")
            if "Content team" in system:
                return tool_call("Route", next=content_choice, reason="scripted content")
            choice = order.pop(0) if len(order) > 1 else order[0]
            return tool_call("Route", next=choice, reason="scripted verification")
        if "Judgement" in tools:
            n = next(judgements)
            ok = approve(n) if callable(approve) else approve
            return tool_call(
                "Judgement",
                score=0.9 if ok else 0.3,
                approved=ok,
                issues=[] if ok else ["needs work"],
            )
        if "WrittenSentence" in tools:
            return tool_call("WrittenSentence", sentence=write(fact_of(messages), next(sentences)))
        if "WrittenQuestion" in tools:
            return tool_call("WrittenQuestion", question=question)
        if "PaperResearcher" in system:
            return text(research)
        return text("A reply the scripted model has no role for.")

    return ScriptedChatModel(handler=handler, calls=[], token_seconds=token_seconds)
