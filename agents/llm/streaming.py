"""A structured-output call whose answer is read as it is generated: `FieldStream`, the
LangChain callback that hands over one string field of a forced tool call while its
arguments stream in, and `streaming(model)`, the model that streams its calls.

How: `with_structured_output(..., method="function_calling")` on a model with
`streaming=True` still returns the parsed object, but langchain-core then calls the
model's streaming API (`_astream`, through `agents.llm.calls`'s gate and deadline) and
reports every chunk to the callbacks' `on_llm_new_token`. The chunks of a tool call
carry pieces of its JSON arguments (`tool_call_chunks[].args`); `FieldStream` parses the
arguments so far (langchain-core's `parse_partial_json`, which closes an open string)
and passes the field's text to `on_text` whenever it grew.

Usage: OpenAI sends it in the stream's last chunk (`stream_usage=True`, i.e.
`stream_options={"include_usage": true}`); llama-cpp-python's server (0.3) sends none in
a stream. `FieldStream.chunks` counts the chunks that carried text (llama.cpp sends one
per token), which `agents.teams.nodes.Reporter` uses when the answer has no usage.

Retries: a call whose stream broke after its first chunk is made again from the start
(`agents.llm.calls.restarting`); `FieldStream.restart` then forgets what the broken
attempt streamed and shows the field empty, so the retried attempt's text replaces it
and only the answer's chunks are counted (as an unstreamed call counts only the answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.utils.json import parse_partial_json

#: What receives the streamed field: its whole text so far (not only the new part).
OnText = Callable[[str], Awaitable[None]]


class FieldStream(AsyncCallbackHandler):
    """Calls `on_text(text)` with the text so far of string field `field` of the tool
    call being streamed, each time it grows; counts the chunks (`chunks`) that carried
    arguments or text. Errors of `on_text` propagate (`raise_error`)."""

    raise_error = True

    def __init__(self, field: str, on_text: OnText) -> None:
        self.field, self.on_text = field, on_text
        self.arguments, self.text, self.chunks = "", "", 0
        self.restarts = 0

    async def restart(self) -> None:
        """The call is made again from the start (`agents.llm.calls.restarting`): drop
        the arguments, text and chunks streamed so far and, when some text was shown,
        call `on_text("")`, so what the next attempt streams replaces it. Counts the
        restarts (`restarts`)."""
        shown = self.text
        self.arguments, self.text, self.chunks = "", "", 0
        self.restarts += 1
        if shown:
            await self.on_text("")

    async def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        """One streamed chunk: its tool-call argument pieces, or its text."""
        message = getattr(chunk, "message", None)
        pieces = [c.get("args") or "" for c in getattr(message, "tool_call_chunks", None) or []]
        if any(pieces) or token:
            self.chunks += 1
        if not any(pieces):
            return
        self.arguments += "".join(pieces)
        parsed = parse_partial_json(self.arguments)
        value = parsed.get(self.field) if isinstance(parsed, dict) else None
        if isinstance(value, str) and value != self.text:
            self.text = value
            await self.on_text(value)


def streaming(model: BaseChatModel) -> BaseChatModel:
    """`model` set to stream its calls (`streaming=True`); `model` itself when it has no
    `streaming` field (it cannot stream)."""
    if "streaming" not in type(model).model_fields:
        return model
    return model.model_copy(update={"streaming": True})


__all__ = ["FieldStream", "OnText", "streaming"]
