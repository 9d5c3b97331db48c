"""The model factory and the bundled model's server process (real llama.cpp)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from agents import llm, local_model
from agents.llm import ModelConfig, ModelUnavailableError, build_chat_model, open_model
from agents.local_model import LocalModelServer

pytestmark = pytest.mark.anyio


async def test_local_server_starts_answers_and_stops_whatever_port_is_in_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "1")  # meant for PostAssist; must not move the model server
    monkeypatch.setenv("HOST", "0.0.0.0")
    async with open_model(ModelConfig(local_startup_seconds=60)) as source:
        model = source.factory()
        base_url = model.openai_api_base  # type: ignore[attr-defined]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with httpx.AsyncClient() as client:
            models = (await client.get(f"{base_url}/models")).json()
        assert models["data"][0]["id"] == llm.LOCAL_MODEL_ALIAS
        assert source.ready()
    assert not source.ready()  # stopped on exit
    with pytest.raises(ModelUnavailableError):
        source.factory()


async def test_a_crashing_server_gives_an_error_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    server = LocalModelServer(model_path=broken, startup_timeout=60)
    with pytest.raises(ModelUnavailableError, match="exited with code"):
        await server.start()
    assert not server.is_running()


async def test_missing_build_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(ModelUnavailableError, match='CMAKE_ARGS="-DGGML_NATIVE=OFF"'):
        await LocalModelServer(python=sys.executable).start()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelUnavailableError, match="not installed"):
        local_model.find_local_gguf()


def test_model_factory_sends_max_tokens_to_openai_compatible_servers() -> None:
    local = build_chat_model(
        ModelConfig(provider="local", base_url="http://127.0.0.1:1/v1", max_tokens=77)
    )
    payload = local._get_request_payload([("user", "hi")])  # type: ignore[attr-defined]
    assert payload["max_tokens"] == 77 and "max_completion_tokens" not in payload
    assert payload["extra_body"] == {"repeat_penalty": 1.3}
    openai = build_chat_model(ModelConfig(provider="openai", api_key="sk-test", model="gpt-4o"))
    payload = openai._get_request_payload([("user", "hi")])  # type: ignore[attr-defined]
    assert payload["max_completion_tokens"] == 512 and "max_tokens" not in payload
    with pytest.raises(ModelUnavailableError, match="OPENAI_API_KEY"):
        build_chat_model(ModelConfig(provider="openai"))
