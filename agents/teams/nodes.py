"""Per-run dependencies (`RunContext`) and the `Reporter` every node uses to call the
model and tools while reporting each step as an `Event`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agents.llm.calls import restarting
from agents.llm.prices import PriceTable
from agents.llm.streaming import FieldStream, OnText, streaming
from agents.teams import plan
from agents.teams.sources import SourcesConfig
from agents.teams.state import TEAM_OF, PostState
from db.drafts import DraftPublisher
from db.enums import EventKind
from db.events import Event, TaskResult

Emit = Callable[[Event], Awaitable[None]]
#: Characters per token when a streamed answer's usage must be estimated (the usual
#: rule of thumb for English text with BPE tokenizers).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class AgentOutput:
    """What an agent's work gives back: `update`, the state update (plain JSON: each
    output as its `db.outputs` model's `model_dump(mode="json")`); `summary`, one line
    for the AGENT_FINISHED event; and `result`, the task columns to store with that
    event (None: none)."""

    update: dict[str, Any]
    summary: str
    result: TaskResult | None = None


#: An agent's work: its reporter and the state in, its `AgentOutput` out.
Work = Callable[["Reporter", PostState], Awaitable[AgentOutput]]
#: A LangGraph node of PostAssist's graphs: state and runtime in, a state update out.
Node = Callable[[PostState, "Runtime[RunContext]"], Awaitable[dict[str, Any]]]


async def discard(_event: Event) -> None:
    """An `Emit` that drops every event (runs nobody watches)."""
    return None


async def nothing_to_flush() -> None:
    """The `flush` of an `emit` that stores each event before it returns."""
    return None


async def never_paused() -> bool:
    """The `pause_requested` of a run nobody can pause."""
    return False


@dataclass(frozen=True)
class RunContext:
    """What one graph run needs, passed as LangGraph's runtime context
    (`graph.ainvoke(state, config, context=RunContext(...))`): the chat model, where to
    report events, `flush()`, which every node awaits before it returns so that a
    buffering `emit` has stored the node's events before LangGraph checkpoints it, and
    where research may fetch real sources (`sources`; the default fetches nothing), and
    `pause_requested()`, which the supervisors await at each node boundary: True stops
    the run there (`agents.teams.review.pause_point`).

    `prices` prices each model call in its LLM_USAGE event (`cost_usd`, USD); None: the
    calls' cost is unknown and `cost_usd` is null (`agents.llm.prices`).

    `cache_scope` is who may share cached node results (the task's owner: a principal's
    cached research notes are never served to another; `agents.teams.researcher`).

    `drafts` publishes the post as LinkedInCreator writes it (`db.drafts`; None: the
    writer's calls do not stream)."""

    model: BaseChatModel
    emit: Emit = discard
    flush: Callable[[], Awaitable[None]] = nothing_to_flush
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    pause_requested: Callable[[], Awaitable[bool]] = never_paused
    prices: PriceTable | None = None
    cache_scope: str = ""
    drafts: DraftPublisher | None = None


@dataclass(frozen=True)
class Reporter:
    """Reports the steps of one node: `team` and `agent` name who acts (a supervisor
    or an agent; `team` is None for the meta-supervisor)."""

    context: RunContext
    team: str | None
    agent: str

    @classmethod
    def of(cls, runtime: Runtime[RunContext], *, team: str | None, agent: str) -> Reporter:
        """The reporter for `agent` of `team` in the run of `runtime`."""
        return cls(runtime.context, team, agent)

    async def emit(self, kind: EventKind, message: str = "", **fields: Any) -> None:
        """Report an event by this node (`fields`: `data`, `progress`, `result`, or a
        `team`/`agent` override)."""
        fields = {"team": self.team, "agent": self.agent, **fields}
        await self.context.emit(Event(kind, message, **fields))

    async def _usage(
        self,
        message: AIMessage | None,
        *,
        purpose: str,
        started: float,
        streamed: FieldStream | None = None,
        prompt: list[Any] | None = None,
    ) -> None:
        """Report a call's LLM_USAGE: data `purpose`, `input_tokens`, `output_tokens`,
        `total_tokens`, `seconds` and `cost_usd` (USD from `context.prices`; null
        without a price table).

        A `streamed` answer without usage (llama-cpp-python's server sends none in a
        stream) is counted instead, with `estimated: true`: output tokens = the chunks
        that carried text (one per token on llama.cpp), input tokens = the characters of
        `prompt` / `CHARS_PER_TOKEN`."""
        usage = (message.usage_metadata if message is not None else None) or {}
        tokens = {k: usage.get(k, 0) for k in ("input_tokens", "output_tokens", "total_tokens")}
        extra: dict[str, Any] = {}
        if streamed is not None and not tokens["total_tokens"]:
            characters = sum(len(str(m.content)) for m in prompt or [])
            tokens["input_tokens"] = characters // CHARS_PER_TOKEN
            tokens["output_tokens"] = streamed.chunks
            tokens["total_tokens"] = tokens["input_tokens"] + tokens["output_tokens"]
            extra["estimated"] = True
        seconds = round(time.monotonic() - started, 3)
        prices = self.context.prices
        cost = prices.cost(tokens["input_tokens"], tokens["output_tokens"]) if prices else None
        await self.emit(
            EventKind.LLM_USAGE,
            f"{purpose}: {tokens['total_tokens']} tokens",
            data={"purpose": purpose, **tokens, "seconds": seconds, "cost_usd": cost, **extra},
        )

    async def _calling(self, purpose: str, **data: Any) -> float:
        """Report that a model call for `purpose` is sent (LLM_CALL: the agent now waits
        for the model, its turn at a busy one included); return the monotonic start."""
        await self.emit(
            EventKind.LLM_CALL,
            f"waiting for the model: {purpose}",
            data={"purpose": purpose, **data},
        )
        return time.monotonic()

    async def write(self, messages: list[Any], *, purpose: str, max_tokens: int) -> str:
        """Free-text model call (at most `max_tokens` output tokens); reports the call
        (LLM_CALL) and its token usage (LLM_USAGE). Returns the text."""
        started = await self._calling(purpose, max_tokens=max_tokens)
        reply = await self.context.model.ainvoke(messages, max_tokens=max_tokens)
        await self._usage(reply, purpose=purpose, started=started)
        return reply.content if isinstance(reply.content, str) else str(reply.content)

    async def judge(
        self,
        schema: type[BaseModel],
        messages: list[Any],
        *,
        purpose: str,
        max_tokens: int | None = None,
        on_text: tuple[str, OnText] | None = None,
    ) -> tuple[Any | None, str | None]:
        """Structured-output call (function calling). Returns `(parsed, None)`, or
        `(None, why)` when the answer could not be parsed; reports the call (LLM_CALL)
        and its token usage (LLM_USAGE). `max_tokens` caps the answer (models with a
        `max_tokens` field; others keep their own cap). With `on_text=(field, fn)` the
        call streams and `fn(text)` gets the string field `field` so far whenever it grows
        (`agents.llm.streaming`); a stream that broke after its first chunk is made again
        from the start with the retries an unstreamed call has, `fn("")` first when text
        was shown (`agents.llm.calls.restarting`), and fails as an unstreamed call fails.
        Without `on_text` the call is not streamed."""
        started = await self._calling(purpose, schema=schema.__name__)
        model = self.context.model
        if max_tokens is not None and "max_tokens" in type(model).model_fields:
            model = model.model_copy(update={"max_tokens": max_tokens})
        streamed = FieldStream(*on_text) if on_text is not None else None
        if streamed is not None:
            model = streaming(model)
        runnable = model.with_structured_output(schema, method="function_calling", include_raw=True)
        if streamed is None:
            out = await runnable.ainvoke(messages)
        else:
            config: RunnableConfig = {"callbacks": [streamed]}
            out = await restarting(
                lambda: runnable.ainvoke(messages, config=config), streamed.restart
            )
        await self._usage(
            out.get("raw"), purpose=purpose, started=started, streamed=streamed, prompt=messages
        )
        if out.get("parsing_error") is not None:
            return None, f"unparseable answer ({type(out['parsing_error']).__name__})"
        if out.get("parsed") is None:
            return None, "the model answered without the structured output"
        return out["parsed"], None

    async def tool(self, fn: BaseTool, args: dict[str, Any]) -> Any:
        """Invoke a LangChain tool, reporting the call and a summary of its result."""
        await self.emit(EventKind.TOOL_CALL, fn.name, data={"tool": fn.name, "args": args})
        result = await fn.ainvoke(args)
        summary = result if isinstance(result, dict | list) else {"text": str(result)}
        await self.emit(
            EventKind.TOOL_RESULT, f"{fn.name} returned", data={"tool": fn.name, "result": summary}
        )
        return result


def agent_node(agent: str, activity: str, work: Work) -> Node:
    """The graph node of `agent`: its `work`, reported as AGENT_STARTED, then
    AGENT_FINISHED (with the plan's progress and any task columns to store) or
    AGENT_ERROR (the exception's type only: its text may be a provider's raw answer or
    SQL; the task's error says what happened), after which the error is re-raised."""
    team = TEAM_OF[agent]

    async def node(state: PostState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        reporter = Reporter.of(runtime, team=team, agent=agent)
        await reporter.emit(EventKind.AGENT_STARTED, activity)
        try:
            output = await work(reporter, state)
        except Exception as exc:
            await reporter.emit(EventKind.AGENT_ERROR, f"{agent} stopped: {type(exc).__name__}")
            raise
        update = {**output.update, "steps_done": plan.steps_after(agent, state)}
        # The event's progress counts this agent alone (a PARALLEL sibling may still be
        # at work), so the events' progress never goes back.
        done = state.get("steps_done", 0) + 1
        after: PostState = {**state, **output.update, "steps_done": done}  # type: ignore[typeddict-item]
        await reporter.emit(
            EventKind.AGENT_FINISHED,
            output.summary,
            progress=plan.progress(after),
            result=output.result,
        )
        await runtime.context.flush()
        return update

    node.__name__ = agent
    return node
