"""An OpenAI-compatible stub chat model with a fixed latency, for tests and benchmarks.

`POST /v1/chat/completions` answers after `latency` seconds: a forced tool call gets
arguments built from the tool's JSON schema (the first `enum` value, 0.9 for numbers,
true, [] or "stub"), so structured outputs parse; other calls get a short, grounded
research note or post body. `GET /calls` returns `{"count", "log": [{"at", "system",
"tool"}]}` (`at`: when the call arrived) so a test can tell which calls were made and when.

Run it alone: `python -m tests.stub_model --port 8100 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RESEARCH = (
    "SUMMARY: The paper presents its method and reports its results.\n"
    "INSIGHTS:\n- The method is described in the context.\n"
    "LIMITATIONS:\n- The context gives few details."
)
POST = "The paper presents a new method. What would you try it on?"


def _value(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    return {"number": 0.9, "integer": 1, "boolean": True, "array": [], "object": {}}.get(
        kind, "stub"
    )


def _arguments(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool.get("function", {}).get("parameters", {})
    properties = parameters.get("properties", {})
    return {name: _value(schema) for name, schema in properties.items()}


def create_stub(latency: float = 0.0) -> Starlette:
    """The stub app; every completion waits `latency` seconds first."""
    log: list[dict[str, Any]] = []

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        tools = body.get("tools") or []
        log.append({"at": time.time(), "system": system[:80], "tool": bool(tools)})
        await asyncio.sleep(latency)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if tools:
            tool = tools[0]
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:8]}",
                    "type": "function",
                    "function": {
                        "name": tool["function"]["name"],
                        "arguments": json.dumps(_arguments(tool)),
                    },
                }
            ]
        else:
            message["content"] = RESEARCH if "PaperResearcher" in system else POST
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
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        )

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def calls(_: Request) -> JSONResponse:
        return JSONResponse({"count": len(log), "log": log})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/calls", calls),
        ]
    )


def main() -> None:
    """Serve the stub on 127.0.0.1 (`--port`, `--latency` seconds per call)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(create_stub(args.latency), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
