"""One call to the chat model, bounded: `BoundedChatOpenAI`, the `ChatOpenAI` whose
asynchronous calls pass through a `ModelGate` and end within a deadline (tried once more
with fewer output tokens after a timeout, sent again after a broken connection once the
model is back), `CompatChatOpenAI` for servers that read `max_tokens`, and the errors a
call ends with (`ModelTimeoutError`, `model_failure`).

`agents.llm.chat.build_chat_model` is the only place that builds them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import openai

from agents.llm.gate import ModelGate
from agents.llm.langchain_compat import Generate, HookedChatOpenAI, Stream

logger = logging.getLogger(__name__)

#: A timed-out call is tried once more with this share of its output-token cap.
SHORTER_GENERATION = 0.5
#: Times one call is sent again after its connection broke and the model came back; one
#: more break fails it (an endpoint that answers probes but drops every completion must
#: not have the same request sent, and perhaps billed, until the run times out).
MAX_RESENDS = 3


class ModelTimeoutError(RuntimeError):
    """One model call, with its retries, ran past its deadline (`ModelConfig.timeout`)."""


def model_failure(exc: BaseException) -> tuple[str, bool] | None:
    """For an error of the model provider, `(message, retryable)`: a message of ours
    (status code or deadline, never the provider's text) and whether trying the task
    again may help (timeouts, 429 and 5xx: yes; other 4xx: no). None for other errors."""
    if isinstance(exc, (ModelTimeoutError, openai.APITimeoutError)):
        return "the model did not answer in time", True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "the model endpoint is rate limiting requests (HTTP 429)", True
        if status >= 500:
            return f"the model endpoint failed (HTTP {status})", True
        return f"the model endpoint refused the request (HTTP {status})", False
    if isinstance(exc, openai.APIResponseValidationError):
        return "the model endpoint sent a response that is not valid", False
    return None


def _is_unreachable(exc: BaseException) -> bool:
    """A connection that could not be made or broke (not a timeout, not an answer)."""
    return isinstance(exc, openai.APIConnectionError | httpx.TransportError) and not isinstance(
        exc, openai.APITimeoutError | httpx.TimeoutException
    )


class BoundedChatOpenAI(HookedChatOpenAI):
    """`ChatOpenAI` whose async calls pass through a `ModelGate` and fail with
    `ModelTimeoutError` after `call_deadline` seconds however the client's retries go,
    so a hung provider costs one call its deadline, never the run slot.

    Per call: wait for a slot (the model up, a slot free); send it within
    `call_deadline`; on a timeout, let the gate drop the abandoned request and try once
    more with `SHORTER_GENERATION` of the output tokens; on a broken connection, mark
    the model down, wait for it (the gate gives up after `unavailable_after`) and send
    the call again, at most `MAX_RESENDS` times."""

    call_deadline: float | None = None
    gate: Any = None  # ModelGate | None (pydantic cannot check the class)

    def _timed_out(self) -> ModelTimeoutError:
        return ModelTimeoutError(f"the model did not answer within {self.call_deadline:g}s")

    def _shorter(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        cap = kwargs.get("max_tokens") or self.max_tokens or 512
        return {**kwargs, "max_tokens": max(16, int(cap * SHORTER_GENERATION))}

    async def around_generate(self, generate: Generate, *args: Any, **kwargs: Any) -> Any:
        """One call through the gate, within the deadline (see the class)."""
        gate: ModelGate = self.gate or _OPEN_GATE
        shortened, resends = False, 0
        while True:
            async with gate.slot():
                try:
                    async with asyncio.timeout(self.call_deadline):
                        result = await generate(*args, **kwargs)
                except TimeoutError:
                    await gate.timed_out()
                    if shortened:
                        raise self._timed_out() from None
                    logger.warning(
                        "model call timed out after %gs; trying once with fewer tokens",
                        self.call_deadline,
                    )
                    shortened, kwargs = True, self._shorter(kwargs)
                    continue
                except Exception as exc:
                    if not (self.gate and _is_unreachable(exc)) or resends >= MAX_RESENDS:
                        raise
                    gate.down(f"unreachable ({type(exc).__name__})")
                    resends += 1
                    continue  # the next slot() waits until it is back, or gives up
            gate.succeeded()
            return result

    async def around_stream(self, stream: Stream, *args: Any, **kwargs: Any) -> Any:
        """One streamed call through the gate, within the deadline (see the class)."""
        gate: ModelGate = self.gate or _OPEN_GATE
        async with gate.slot():
            try:
                async with asyncio.timeout(self.call_deadline):
                    async for chunk in stream(*args, **kwargs):
                        yield chunk
            except TimeoutError:
                await gate.timed_out()
                raise self._timed_out() from None
        gate.succeeded()


class CompatChatOpenAI(BoundedChatOpenAI):
    """`ChatOpenAI` for OpenAI-compatible servers that read `max_tokens`, not
    `max_completion_tokens` (llama.cpp's server ignores the latter and would generate
    until the context is full)."""

    def adjust_payload(self, payload: dict) -> dict:
        """The request body with `max_tokens` instead of `max_completion_tokens`."""
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        return payload


#: The gate of a model built without one: no slots, never down.
_OPEN_GATE = ModelGate()
