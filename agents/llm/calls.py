"""One call to the chat model, bounded: `BoundedChatOpenAI`, the `ChatOpenAI` whose
asynchronous calls pass through a `ModelGate` and end within a deadline (tried once more
with fewer output tokens after a timeout, sent again after a broken connection once the
model is back), `CompatChatOpenAI` for servers that read `max_tokens`, and the errors a
call ends with (`ModelTimeoutError`, `model_failure`).

Streamed calls get the same retries. Until a stream's first chunk arrives they are
retried in place, as a call is; after it, LangChain has already taken the chunk into
the answer it is assembling and the caller has shown it, so only the caller can start
over: inside `restarting(call, on_restart)` such a stream ends with `StreamRestart`,
`on_restart()` drops what was streamed and `call()` is made again, the retries left
carried over (one shortened try after a timeout, `MAX_RESENDS` resends in all).

`agents.llm.chat.build_chat_model` is the only place that builds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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


class StreamRestart(Exception):
    """A streamed call broke after its first chunk with retries left: the caller must
    drop what it streamed and make the call again. Raised only inside `restarting`,
    which takes it."""


@dataclass
class _Retries:
    """The retries one call has used: its shortened try, its resends."""

    shortened: bool = False
    resends: int = 0


#: The retries of the call `restarting` makes (None outside it).
_RESTARTS: contextvars.ContextVar[_Retries | None] = contextvars.ContextVar(
    "postassist_stream_retries", default=None
)
T = TypeVar("T")


async def restarting(
    call: Callable[[], Awaitable[T]], on_restart: Callable[[], Awaitable[None]]
) -> T:
    """`await call()`, one call to a `BoundedChatOpenAI` that streams (e.g. a runnable's
    `ainvoke` with streaming on), made again from the start after its stream broke
    past its first chunk (a timeout, or a broken connection while the model is down):
    `on_restart()` is awaited first (forget what was streamed; the next attempt's
    chunks replace it). All attempts share one call's retries (see `BoundedChatOpenAI`),
    so this raises what the unstreamed call would: `ModelTimeoutError`,
    `openai.APIConnectionError`, `ModelUnavailableError`, the provider's errors."""
    token = _RESTARTS.set(_Retries())
    try:
        while True:
            try:
                return await call()
            except StreamRestart:
                await on_restart()
    finally:
        _RESTARTS.reset(token)


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


def _connection_error(exc: httpx.TransportError) -> openai.APIConnectionError:
    """`exc` as the unstreamed call raises it: a connection that broke while a stream
    was read is httpx's own error, which the OpenAI client wraps only while it sends
    (`openai.APIConnectionError`, what `agents.runtime.execution` fails a task with)."""
    try:
        request = exc.request
    except RuntimeError:  # raised by httpx when the error carries no request
        request = httpx.Request("POST", "http://model.invalid/")
    return openai.APIConnectionError(request=request)


async def _within(source: AsyncIterator[Any], deadline: float | None) -> AsyncIterator[Any]:
    """The chunks of `source` until `deadline` (the loop's clock; None: no limit), then
    `TimeoutError`. Only the waits for a chunk are cancelled at the deadline, never the
    consumer between chunks; `source` is closed however this ends."""
    try:
        while True:
            async with asyncio.timeout_at(deadline):
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    return
            yield chunk
    finally:
        closing = getattr(source, "aclose", None)
        if closing is not None:
            await closing()


class BoundedChatOpenAI(HookedChatOpenAI):
    """`ChatOpenAI` whose async calls pass through a `ModelGate` and fail with
    `ModelTimeoutError` after `call_deadline` seconds however the client's retries go,
    so a hung provider costs one call its deadline, never the run slot.

    Per call: wait for a slot (the model up, a slot free); send it within
    `call_deadline`; on a timeout, let the gate drop the abandoned request and try once
    more with `SHORTER_GENERATION` of the output tokens; on a broken connection, mark
    the model down, wait for it (the gate gives up after `unavailable_after`) and send
    the call again, at most `MAX_RESENDS` times.

    A streamed call does the same, its deadline covering the whole stream: retried in
    place until its first chunk has been passed on; after that, inside `restarting` it
    ends with `StreamRestart` (the caller starts over, with the retries left), outside
    it with the error it would fail with once out of retries. A connection that breaks
    while a stream is read ends it with `openai.APIConnectionError`, as when sending."""

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
        scope = _RESTARTS.get()
        retries = scope or _Retries()
        if retries.shortened:  # a restart after a timeout
            kwargs = self._shorter(kwargs)
        while True:
            started = False
            async with gate.slot():
                deadline = None
                if self.call_deadline is not None:
                    deadline = asyncio.get_running_loop().time() + self.call_deadline
                try:
                    async with contextlib.aclosing(
                        _within(stream(*args, **kwargs), deadline)
                    ) as chunks:
                        async for chunk in chunks:
                            started = True
                            yield chunk
                except (TimeoutError, httpx.TimeoutException):
                    await gate.timed_out()
                    if retries.shortened or (started and scope is None):
                        raise self._timed_out() from None
                    logger.warning(
                        "streamed model call timed out after %gs%s; trying once with fewer tokens",
                        self.call_deadline,
                        " past its first chunk" if started else "",
                    )
                    retries.shortened = True
                    if started:
                        raise StreamRestart("timed out") from None
                    kwargs = self._shorter(kwargs)
                    continue
                except Exception as exc:
                    unreachable = _is_unreachable(exc)
                    if (
                        not (self.gate and unreachable)
                        or retries.resends >= MAX_RESENDS
                        or (started and scope is None)
                    ):
                        if isinstance(exc, httpx.TransportError):  # not openai's: unwrapped
                            raise _connection_error(exc) from exc
                        raise
                    gate.down(f"unreachable ({type(exc).__name__})")
                    retries.resends += 1
                    if started:
                        raise StreamRestart("connection broke") from None
                    continue  # the next slot() waits until it is back, or gives up
            gate.succeeded()
            return


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
