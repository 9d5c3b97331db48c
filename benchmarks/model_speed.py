"""How fast the bundled model is on this machine, and what that means for
`LLM_TIMEOUT_SECONDS`: prompt tokens per second, output tokens per second, and the time
of the largest call PostAssist makes (a prompt near the context window and
`LLM_MAX_TOKENS` output tokens), idle and with the other cores busy. Prints a table;
asserts nothing.

Usage: `python -m benchmarks.model_speed [--max-tokens 512]` (from the repository root;
needs the `local` extra). The default bundled timeout (`agents.llm.chat.LOCAL_DEFAULT_TIMEOUT`)
comes from these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid

from agents.llm.chat import LOCAL_DEFAULT_TIMEOUT, ModelConfig, open_model
from benchmarks.harness import print_table

#: A prompt of about this many tokens stands in for the largest prompt of a run (a
#: revision's writer prompt with the research notes, the draft and both reports).
LARGE_PROMPT_TOKENS = 3500
#: "Transformer attention layers " is about 4 tokens.
FILLER = "Transformer attention layers "


def _burn(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


async def _measure(model, prompt_words: int, max_tokens: int) -> tuple[float, int, int]:
    """One call: `(seconds, prompt tokens, output tokens)`. The prompt opens with a fresh
    number, so llama.cpp's prompt cache cannot reuse an earlier one."""
    nonce = uuid.uuid4().int % 10**12
    prompt = f"Note {nonce}. Write a long essay about these words: " + FILLER * prompt_words
    started = time.monotonic()
    reply = await model.ainvoke(prompt, max_tokens=max_tokens)
    usage = reply.usage_metadata or {}
    return time.monotonic() - started, usage.get("input_tokens", 0), usage.get("output_tokens", 0)


async def main(max_tokens: int) -> None:
    config = ModelConfig(timeout=600, local_context=4096)
    rows = []
    async with open_model(config) as source:
        model = source.factory()
        await _measure(model, 10, 8)  # load and warm up
        for label, busy in (("idle", 0), ("other cores busy", (os.cpu_count() or 2) - 1)):
            burners = [
                multiprocessing.Process(target=_burn, args=(time.monotonic() + 120,))
                for _ in range(busy)
            ]
            for burner in burners:
                burner.start()
            try:
                prompt_s, prompt_in, _ = await _measure(model, LARGE_PROMPT_TOKENS // 4, 1)
                short_s, short_in, _ = await _measure(model, 5, 1)
                gen_s, _, gen_out = await _measure(model, 5, max_tokens)
                big_s, big_in, big_out = await _measure(model, LARGE_PROMPT_TOKENS // 4, max_tokens)
            finally:
                for burner in burners:
                    burner.terminate()
            prompt_rate = (prompt_in - short_in) / max(prompt_s - short_s, 1e-6)
            output_rate = gen_out / max(gen_s - short_s, 1e-6)
            rows.append(
                [
                    label,
                    f"{prompt_rate:.0f}",
                    f"{output_rate:.0f} ({gen_out} tokens)",
                    f"{big_s:.1f} ({big_in} in, {big_out} out)",
                    f"{big_in / prompt_rate + max_tokens / output_rate:.1f}",
                ]
            )
    header = (
        "load",
        "prompt tokens/s",
        "output tokens/s",
        "large call, s",
        f"worst case: {LARGE_PROMPT_TOKENS} in + {max_tokens} out, s",
    )
    print_table("bundled SmolLM2-135M on this machine", [header, *map(tuple, rows)])
    print(f"default LLM_TIMEOUT_SECONDS for the bundled model: {LOCAL_DEFAULT_TIMEOUT:g} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=512, help="LLM_MAX_TOKENS")
    asyncio.run(main(parser.parse_args().max_tokens))
