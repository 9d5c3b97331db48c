"""The one place that overrides LangChain's private methods: `HookedChatOpenAI`, a
`ChatOpenAI` whose three private methods each hand over to a public hook that
`agents.llm.chat` overrides.

- `_agenerate` (langchain-core's `BaseChatModel`) -> `around_generate`: wrap each
  asynchronous call (admission, deadline, retries: `agents.llm.chat`);
- `_astream` (the same) -> `around_stream`: wrap each streamed call;
- `_get_request_payload` (langchain-openai's `BaseChatOpenAI`) -> `adjust_payload`:
  change the request body (`max_tokens` for servers that ignore
  `max_completion_tokens`).

Why private: `invoke`/`ainvoke` and their callbacks do everything around the call that
must not be repeated (caching, tracing, the v1 output rewrite), so a call can only be
wrapped below them; LangChain's guide to custom chat models says to implement exactly
these `_agenerate`/`_astream` methods, but they stay private names. Public replacement:
none in langchain-core 1.8 for the call (its `BaseChatModel` has no middleware hook
around one provider request; LangChain v1's agent middleware wraps agents, not a bare
model), nor in langchain-openai 1.7 for the payload (`ChatOpenAI` renames `max_tokens` to
`max_completion_tokens` in this very method; `extra_body` adds keys, it cannot take
one away).

Signatures are `(*args, **kwargs)` on purpose: langchain-core passes `run_manager` to
`_agenerate` only when its signature names one (`_signature_parameters`), and these
overrides have never taken it; naming it would change what the callbacks see.

The installed versions of both packages are checked at import: an upgrade that renames
or re-signs these methods fails here with a message, not with calls that silently skip
the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from db.compat import require_verified

#: The langchain-core and langchain-openai releases whose private methods this module
#: was written against (PEP 440).
SUPPORTED = {"langchain-core": "==1.8.*", "langchain-openai": "==1.7.*"}

for _package, _supported in SUPPORTED.items():
    require_verified(
        _package,
        _supported,
        seam="agents/llm/langchain_compat.py",
        check="the private methods BaseChatModel._agenerate and _astream (langchain-core; "
        "how they are called, and when with run_manager) and "
        "BaseChatOpenAI._get_request_payload (langchain-openai)",
    )

from langchain_openai import ChatOpenAI  # noqa: E402

#: One asynchronous model call: `ChatOpenAI`'s own, with the arguments it was given.
Generate = Callable[..., Awaitable[Any]]
#: One streamed model call: `ChatOpenAI`'s own.
Stream = Callable[..., AsyncIterator[Any]]


class HookedChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` with public hooks around its private methods (see the module).
    Each hook's default does what `ChatOpenAI` does without it."""

    async def around_generate(self, generate: Generate, *args: Any, **kwargs: Any) -> Any:
        """One asynchronous call: `await generate(*args, **kwargs)` (a `ChatResult`),
        which the override may call again (with other `kwargs`) or not at all."""
        return await generate(*args, **kwargs)

    def around_stream(self, stream: Stream, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """One streamed call: the chunks of `stream(*args, **kwargs)`."""
        return stream(*args, **kwargs)

    def adjust_payload(self, payload: dict) -> dict:
        """The request body `ChatOpenAI` built, as it will be sent."""
        return payload

    # The private overrides: langchain-core calls `_agenerate`/`_astream` for each
    # async call; langchain-openai builds each request body in `_get_request_payload`.

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        return await self.around_generate(super()._agenerate, *args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        async for chunk in self.around_stream(super()._astream, *args, **kwargs):
            yield chunk

    def _get_request_payload(self, input_: Any, *, stop: Any = None, **kwargs: Any) -> dict:
        return self.adjust_payload(super()._get_request_payload(input_, stop=stop, **kwargs))


__all__ = ["SUPPORTED", "Generate", "HookedChatOpenAI", "Stream"]
