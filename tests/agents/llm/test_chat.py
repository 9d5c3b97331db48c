"""The model factory and the bundled model's server process (real llama.cpp)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from agents.llm import chat, local_server
from agents.llm.calls import ModelTimeoutError
from agents.llm.chat import ModelConfig, build_chat_model, open_model
from agents.llm.gate import ModelUnavailableError
from agents.llm.local_server import LocalModelServer

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
        assert models["data"][0]["id"] == local_server.LOCAL_MODEL_ALIAS
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
        local_server.find_local_gguf()


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


LONG_PROMPT = "Explain the Transformer architecture in detail, layer by layer. " * 20


async def test_a_killed_bundled_server_is_restarted_and_the_call_goes_on() -> None:
    """kill -9 of the bundled server mid-call: the gate says DOWN with the reason, the
    server comes back on the same port, and the call gets its answer from it."""
    async with open_model(ModelConfig(local_startup_seconds=60, local_max_restarts=2)) as source:
        model = source.factory()
        assert source.gate is not None
        server_pid = _server_pid(source)
        call = asyncio.create_task(model.ainvoke(LONG_PROMPT, max_tokens=200))
        for _ in range(500):  # until the call is inside the server (10 s at most)
            if source.gate.in_flight:
                break
            await asyncio.sleep(0.02)
        os.kill(server_pid, signal.SIGKILL)
        seen: set[str] = set()
        while not call.done():
            status = source.gate.status()
            seen.add(f"{status.state.value}: {status.reason}")
            await asyncio.sleep(0.05)
        answer = call.result()
        assert answer.content
        assert any(s.startswith("DOWN: restarting after it exited") for s in seen), seen
        assert source.gate.status().restarts == 1 and source.ready()
        assert _server_pid(source) != server_pid


async def test_a_bundled_server_that_keeps_dying_fails_the_waiting_calls() -> None:
    async with open_model(ModelConfig(local_startup_seconds=60, local_max_restarts=0)) as source:
        assert source.gate is not None
        os.kill(_server_pid(source), signal.SIGKILL)
        with pytest.raises(ModelUnavailableError, match="LOCAL_MODEL_MAX_RESTARTS=0"):
            await asyncio.wait_for(source.factory().ainvoke("hello", max_tokens=5), 30)
        status = source.gate.status()
        assert not status.ready and "died 1 times" in str(status.reason)


async def test_a_timed_out_call_restarts_the_bundled_server_and_retries_shorter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """llama-cpp-python's server goes on computing a request whose client left: the
    timed-out call restarts it (so nothing is computed for nobody), then tries once more
    with half the tokens, which times out too and restarts it again."""
    config = ModelConfig(local_startup_seconds=60, timeout=0.4)
    async with open_model(config) as source:
        pid = _server_pid(source)
        with caplog.at_level("WARNING"), pytest.raises(ModelTimeoutError):
            await source.factory().ainvoke(LONG_PROMPT, max_tokens=400)
        assert _server_pid(source) != pid
        retried = [r for r in caplog.records if "trying once with fewer tokens" in r.message]
        restarts = [r for r in caplog.records if r.message == "restarting the local model server"]
        assert len(retried) == 1 and len(restarts) == 2
        assert source.ready() and source.gate is not None and source.gate.in_flight == 0


def _server_pid(source: chat.ModelSource) -> int:
    """The pid of the bundled server behind `source` (from the gate's probe)."""
    server = source.gate.probe.__self__  # type: ignore[union-attr]
    return server._process.pid


async def test_the_bundled_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """kill -9 of PostAssist must not leave its model server running (PR_SET_PDEATHSIG)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, sys\n"
        "from agents.llm.local_server import LocalModelServer\n"
        "async def main():\n"
        "    server = LocalModelServer(startup_timeout=60)\n"
        "    await server.start()\n"
        "    print(server._process.pid, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, cwd=Path.cwd()
    )
    assert parent.stdout is not None
    child = int((await asyncio.wait_for(parent.stdout.readline(), 90)).decode())
    parent.kill()
    await parent.wait()
    try:
        for _ in range(100):  # the kernel signals the child at once; give it 5 s to go
            if _gone(child):
                break
            await asyncio.sleep(0.05)
        assert _gone(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # an orphan must not outlive a failed test


def _gone(pid: int) -> bool:
    """The process has exited (no /proc entry, or a zombie awaiting its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True
