"""A scripted OpenAI-compatible endpoint for the streamed-call tests: a real HTTP server
on a socket that plays a script per completion (answer; hang before or after some
chunks; close the connection before or after them), streaming one `WrittenSentence`
tool call as OpenAI does (server-sent events in HTTP chunks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agents.llm.chat import ModelConfig

#: What a completion that goes through answers, and what a broken one had begun.
ANSWER = "The authors train the model on 8 GPUs for 3 days."
BROKEN = "A first try that breaks off before its end, never to be seen again."
#: The usage the endpoint reports with a streamed answer (when it reports any).
USAGE = {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}
PIECE = 4  # characters of the arguments per streamed chunk
DEADLINE = 0.5  # LLM_TIMEOUT_SECONDS of these calls
SENTENCE_TOKENS = 120


def _pieces(sentence: str) -> list[str]:
    arguments = json.dumps({"sentence": sentence})
    return [arguments[at : at + PIECE] for at in range(0, len(arguments), PIECE)]


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    payload = f"data: {text}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(payload), payload)  # one HTTP chunk


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-script",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "script",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _call_piece(n: int, piece: str) -> dict[str, Any]:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
    if n == 0:
        call.update(id="call_1", type="function")
        call["function"]["name"] = "WrittenSentence"
    return _delta({"tool_calls": [call]})


@dataclass
class ScriptedEndpoint:
    """An OpenAI-compatible endpoint playing `plays[i]` for completion i (the last one
    repeats): "answer"; "hang" (no response); "stall:N" (N chunks of `BROKEN`'s
    arguments, then nothing); "drop" (the connection closed before any response);
    "cut:N" (N chunks, then the connection closed mid-body). `requests` records each
    completion's `stream` and `max_tokens`; `usage`: whether a streamed answer ends with
    its usage (OpenAI does; llama-cpp-python's server does not)."""

    plays: list[str]
    usage: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET"):  # the gate's probe of /models
                body = b'{"object": "list", "data": []}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
                writer.write(body)
                await writer.drain()
                return
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            request = json.loads(await reader.readexactly(length))
            self.requests.append(
                {"stream": bool(request.get("stream")), "max_tokens": request.get("max_tokens")}
            )
            play = self.plays[min(len(self.requests), len(self.plays)) - 1]
            await self._play(play, request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up first (a timed-out call)
        finally:
            writer.close()

    async def _play(
        self,
        play: str,
        request: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        kind, _, count = play.partition(":")
        if kind == "drop":
            return
        if kind == "hang":
            await reader.read()  # until the client hangs up
            return
        if not request.get("stream"):
            assert kind == "answer", f"{play} is a streamed play"
            message = {"role": "assistant", "content": None, "tool_calls": [self._call()]}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            body = json.dumps(
                {
                    "id": "c",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "script",
                    "choices": [choice],
                    "usage": USAGE,
                }
            ).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        writer.write(_sse(_delta({"role": "assistant", "content": ""})))
        pieces = _pieces(ANSWER if kind == "answer" else BROKEN)
        for n, piece in enumerate(pieces[: int(count)] if count else pieces):
            writer.write(_sse(_call_piece(n, piece)))
            await writer.drain()
            await asyncio.sleep(0.005)
        if kind == "stall":
            await reader.read()
            return
        if kind == "cut":
            return  # closed without the last HTTP chunk: an incomplete body
        writer.write(_sse(_delta({}, "tool_calls")))
        if self.usage and (request.get("stream_options") or {}).get("include_usage"):
            writer.write(_sse({"id": "c", "object": "chat.completion.chunk", "created": 0,
                               "model": "script", "choices": [], "usage": USAGE}))  # fmt: skip
        writer.write(_sse("[DONE]") + b"0\r\n\r\n")
        await writer.drain()

    @staticmethod
    def _call() -> dict[str, Any]:
        arguments = json.dumps({"sentence": ANSWER})
        return {"id": "call_1", "type": "function",
                "function": {"name": "WrittenSentence", "arguments": arguments}}  # fmt: skip


@contextlib.asynccontextmanager
async def endpoint(script: ScriptedEndpoint) -> AsyncIterator[ModelConfig]:
    server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ModelConfig(
            provider="openai",
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="k",
            max_tokens=300,
            timeout=DEADLINE,
            max_retries=0,
        )
    finally:
        server.close()
