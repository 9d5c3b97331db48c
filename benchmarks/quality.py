"""Post quality on the development set (tests/data): generations and planted flaws.

Part 1 runs the whole graph on every paper of `papers.json` with the configured model
(the bundled SmolLM2 by default; `LLM_PROVIDER`/`OPENAI_*` pick another) and prints per
paper: status, approved, unsupported sentences by our own check, hard-limit violations,
seconds, LLM calls, tokens. Part 2 runs the Verification team on every post of
`posts.json` and prints its recall on the planted flaws (caught, with the right reason
named) by flaw kind, and its precision (clean posts approved).

    python -m benchmarks.quality                 # both parts, bundled model (~15 min)
    python -m benchmarks.quality --papers 3      # the first 3 papers only
    python -m benchmarks.quality --checks-only   # part 2 without the model's judgement
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from agents import checks, post_checks
from agents.graph import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.llm import open_model
from agents.reporting import RunContext
from agents.state import initial_state
from db.events import Event
from db.models import EventKind, PostRequest
from graph.settings import Settings
from tests.fakes import scripted

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text())


async def generate(model: BaseChatModel, paper: dict[str, Any]) -> dict[str, Any]:
    """Run the graph on one paper; return its figures (see the module docstring)."""
    usage = {"calls": 0, "tokens": 0}

    async def emit(event: Event) -> None:
        if event.kind == EventKind.LLM_USAGE:
            usage["calls"] += 1
            usage["tokens"] += int(event.data.get("total_tokens") or 0)

    request = PostRequest(paper_title=paper["title"], additional_context=paper["context"])
    started = time.monotonic()
    try:
        out = await build_graph().ainvoke(
            initial_state(request, max_revisions=2),
            {"recursion_limit": RECURSION_LIMIT},
            context=RunContext(model=model, emit=emit),
        )
        status = "COMPLETED"
    except Exception as exc:  # a benchmark reports failures instead of stopping
        out, status = {}, f"FAILED {type(exc).__name__}"
    post = (out.get("draft") or {}).get("content", "")
    reports = out.get("reports") or []
    tech = post_checks.technical_report(post, title=paper["title"], context=paper["context"])
    return {
        "id": paper["id"],
        "status": status,
        "approved": bool(reports) and all(r["approved"] for r in reports),
        "unsupported": len({c["sentence"] for c in tech["unsupported_claims"]}),
        "hard": len(checks.style_check(post, 10)["hard_issues"]) if post else 1,
        "seconds": time.monotonic() - started,
        "calls": usage["calls"],
        "tokens": usage["tokens"],
        "revisions": out.get("revision", 0),
    }


async def verify(model: BaseChatModel, post: dict[str, Any], paper: dict[str, Any]) -> bool:
    """Run the Verification team on a planted post; True when it was rejected for the
    planted reason (flawed) or approved (clean)."""
    request = PostRequest(
        paper_title=paper["title"],
        additional_context=paper["context"],
        max_hashtags=post["max_hashtags"],
    )
    state = initial_state(request, max_revisions=0)
    state.update(draft={"content": post["post"], "hashtags": []}, draft_round=0)
    out = await build_verification_graph().ainvoke(state, context=RunContext(model=model))
    reports = out["reports"]
    if post["flaw"] is None:
        return all(r["approved"] for r in reports)
    rejected = [r for r in reports if not r["approved"]]
    return any(post["expect"].lower() in i.lower() for r in rejected for i in r["issues"])


async def part_generations(model: BaseChatModel, papers: list[dict[str, Any]]) -> None:
    """Print the per-paper table and the generation targets."""
    rows = []
    print(f"{'paper':<28} {'status':<10} {'appr':<5} {'unsup':>5} {'hard':>4} "
          f"{'sec':>6} {'calls':>5} {'tokens':>6} {'rev':>3}")  # fmt: skip
    for paper in papers:
        row = await generate(model, paper)
        rows.append(row)
        verdict = "yes" if row["approved"] else "no"
        print(f"{row['id'][:28]:<28} {row['status'][:10]:<10} {verdict:<5} "
              f"{row['unsupported']:>5} {row['hard']:>4} {row['seconds']:>6.1f} "
              f"{row['calls']:>5} {row['tokens']:>6} {row['revisions']:>3}")  # fmt: skip
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    approved = [r for r in completed if r["approved"]]
    print(f"\ncompleted {len(completed)}/{len(rows)}; hard-limit violations "
          f"{sum(r['hard'] for r in completed)}; approved {len(approved)}/{len(rows)}; "
          f"approved with an unsupported sentence {sum(1 for r in approved if r['unsupported'])}; "
          f"median {statistics.median(r['seconds'] for r in rows):.1f} s")  # fmt: skip


async def part_flaws(model: BaseChatModel, posts: list[dict[str, Any]], papers: dict) -> None:
    """Print recall by flaw kind and precision on clean posts."""
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for post in posts:
        ok = await verify(model, post, papers[post["paper_id"]])
        by_kind[post["flaw"] or "CLEAN"].append(ok)
    for kind, results in sorted(by_kind.items()):
        label = "precision (clean approved)" if kind == "CLEAN" else "recall"
        print(f"{kind:<20} {label:<27} {sum(results)}/{len(results)}")
    flawed = [ok for kind, r in by_kind.items() if kind != "CLEAN" for ok in r]
    print(f"{'ALL FLAWS':<20} {'recall':<27} {sum(flawed)}/{len(flawed)}")


async def main(args: argparse.Namespace) -> None:
    """Run the parts `args` asks for with the configured (or the checks-only) model."""
    papers = _load("papers.json")[: args.papers]
    posts = _load("posts.json")
    settings = Settings()
    async with open_model(settings.llm_config()) as source:
        model = source.factory()
        print(f"model: {settings.llm_provider} / {source.name}\n")
        if not args.skip_generation:
            await part_generations(model, papers)
        mode = ", checks only" if args.checks_only else ""
        print(f"\nplanted flaws (Verification team{mode})")
        judge = scripted() if args.checks_only else model  # scripted: always approves
        await part_flaws(judge, posts, {p["id"]: p for p in _load("papers.json")})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="post quality on the development set")
    parser.add_argument("--papers", type=int, default=None, help="only the first N papers")
    parser.add_argument("--checks-only", action="store_true", help="no model in part 2")
    parser.add_argument("--skip-generation", action="store_true", help="part 2 only")
    asyncio.run(main(parser.parse_args()))
