"""An OpenAI-compatible stub chat model with a fixed latency, for tests and benchmarks.

`POST /v1/chat/completions` answers after `latency` seconds: a forced tool call gets
arguments built from the tool's JSON schema (the first `enum` value, 0.9 for numbers,
true, [] or "stub"), so structured outputs parse (the writer's sentence is the fact its
prompt gives, its question a fixed one); other calls get a short, grounded
research note or post body. `GET /calls` returns `{"count", "log": [{"at", "system",
"tool"}]}` (`at`: when the call arrived) so a test can tell which calls were made and when.
`PUT /latency` with `{"seconds": s}` sets the latency of the calls that arrive from then
on, so one stub (and the workers pointed at it) can serve tests that need other speeds.

With `"stream": true` it answers in server-sent events as OpenAI does: the text or the
tool call's arguments in pieces of `PIECE_CHARS` characters (about a token each),
`token_seconds` apart after the latency, then, with `stream_options.include_usage`, a
last chunk with the usage.

With `single_slot`, it behaves like llama-cpp-python's server: one request at a time
(the others, `GET /v1/models` included, wait behind it), and `GET /calls` also reports
`max_in_flight`, the most completions that were ever inside the server at once.

Run it alone: `python -m tests.stub_model --port 8100 --latency 0.2 [--token-seconds 0.02]
[--single-slot]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

RESEARCH = (
    "SUMMARY: The paper presents its method and reports its results.\n"
    "INSIGHTS:\n- The method is described in the context.\n"
    "LIMITATIONS:\n- The context gives few details."
)
POST = "The paper presents a new method. What would you try it on?"
QUESTION = "What would you try it on?"
#: Characters per streamed piece (about one token of English).
PIECE_CHARS = 4
USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def _value(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    return {"number": 0.9, "integer": 1, "boolean": True, "array": [], "object": {}}.get(
        kind, "stub"
    )


def _arguments(tool: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    parameters = tool.get("function", {}).get("parameters", {})
    properties = parameters.get("properties", {})
    name = tool.get("function", {}).get("name")
    if name == "WrittenSentence":  # the writer: the fact it was given, as the sentence
        return {"sentence": _fact(messages) or "stub"}
    if name == "WrittenQuestion":
        return {"question": QUESTION}
    return {name: _value(schema) for name, schema in properties.items()}


def _fact(messages: list[dict[str, Any]]) -> str:
    text = str((messages or [{}])[-1].get("content", ""))
    for line in text.splitlines():
        if line.startswith("Fact from the paper:"):
            return line.removeprefix("Fact from the paper:").strip()
    return ""


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


async def _stream(body: dict[str, Any], message: dict[str, Any], token_seconds: float):
    """The server-sent events of `message` (see the module)."""
    yield _chunk(body, {"role": "assistant", "content": ""})
    calls = message.get("tool_calls")
    text = calls[0]["function"]["arguments"] if calls else message["content"]
    for n, at in enumerate(range(0, len(text), PIECE_CHARS)):
        await asyncio.sleep(token_seconds)
        piece = text[at : at + PIECE_CHARS]
        if calls:
            call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
            if n == 0:
                call.update(id=calls[0]["id"], type="function")
                call["function"]["name"] = calls[0]["function"]["name"]
            yield _chunk(body, {"tool_calls": [call]})
        else:
            yield _chunk(body, {"content": piece})
    yield _chunk(body, {}, "tool_calls" if calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "choices": []}
        yield f"data: {json.dumps({**usage, 'usage': USAGE})}\n\n"
    yield "data: [DONE]\n\n"


def create_stub(
    latency: float = 0.0, *, single_slot: bool = False, token_seconds: float = 0.0
) -> Starlette:
    """The stub app; every completion waits `latency` seconds first (behind the one
    slot with `single_slot`), or what `PUT /latency` set last, then generates a piece
    every `token_seconds` (streamed as it goes, or all at once at the end)."""
    log: list[dict[str, Any]] = []
    delay = {"seconds": latency}
    slot = asyncio.Lock() if single_slot else contextlib.nullcontext()
    counts = {"in_flight": 0, "max_in_flight": 0}

    async def completions(request: Request) -> Any:
        counts["in_flight"] += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])
        try:
            async with slot:
                return await answer(request)
        finally:
            counts["in_flight"] -= 1

    async def answer(request: Request) -> Any:
        body = await request.json()
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        tools = body.get("tools") or []
        log.append(
            {
                "at": time.time(),
                "system": system[:80],
                "tool": bool(tools),
                "max_tokens": body.get("max_tokens"),
            }
        )
        await asyncio.sleep(delay["seconds"])
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if tools:
            tool = tools[0]
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:8]}",
                    "type": "function",
                    "function": {
                        "name": tool["function"]["name"],
                        "arguments": json.dumps(_arguments(tool, body.get("messages") or [])),
                    },
                }
            ]
        else:
            message["content"] = RESEARCH if "PaperResearcher" in system else POST
        if not body.get("stream") and token_seconds:  # the same generation time, unstreamed
            calls = message.get("tool_calls")
            text = calls[0]["function"]["arguments"] if calls else message["content"]
            await asyncio.sleep(len(range(0, len(text), PIECE_CHARS)) * token_seconds)
        if body.get("stream"):
            # (the single slot is held for the latency, not while the pieces are sent)
            stream = _stream(body, message, token_seconds)
            return StreamingResponse(stream, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if tools else "stop",
                    }
                ],
                "usage": USAGE,
            }
        )

    async def models(_: Request) -> JSONResponse:
        async with slot:
            return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def calls(_: Request) -> JSONResponse:
        return JSONResponse(
            {"count": len(log), "log": log, "max_in_flight": counts["max_in_flight"]}
        )

    async def set_latency(request: Request) -> JSONResponse:
        seconds = float((await request.json())["seconds"])
        if seconds < 0:
            return JSONResponse({"error": "seconds must be >= 0"}, status_code=400)
        delay["seconds"] = seconds
        return JSONResponse(delay)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/calls", calls),
            Route("/latency", set_latency, methods=["PUT"]),
        ]
    )


def main() -> None:
    """Serve the stub on 127.0.0.1 (`--port`, `--latency` seconds per call)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--token-seconds", type=float, default=0.0, help="per streamed piece")
    parser.add_argument("--single-slot", action="store_true", help="one request at a time")
    args = parser.parse_args()
    app = create_stub(args.latency, single_slot=args.single_slot, token_seconds=args.token_seconds)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
