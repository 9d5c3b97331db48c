"""Post quality on the development set (tests/data): generations and planted flaws.

Part 1 runs the whole graph on every paper of `papers.json` with the configured model
(the bundled SmolLM2 by default; `LLM_PROVIDER`/`OPENAI_*` pick another) and prints per
paper: status, approved, unsupported sentences by our own checks (claims and support),
sentences over the length limit, repeated phrases, hard-limit violations, seconds, LLM
calls, tokens; then, over the approved posts, the issue-19 targets: approved posts with a
repeated phrase or an over-long sentence (target 0), the share of their body sentences
the support check supports (target >= 90%), the approved count (>= 10/14) and the
median generation time (<= 30 s).

Part 2 runs the Verification team on every post of `posts.json` and prints, per planted
flaw kind, its recall (caught by a check of the right kind, the issue naming the planted
`expect`), per check kind its precision (the share of its findings that land on a
planted sentence, or on a post-level flaw it is meant to catch), and the clean posts
approved. MISREAD posts (context words recombined into a claim that turns the context
around) are caught by CONTRADICTION, which was written from them: not a held-out figure.

`--tune-support` prints the sweep that chose `agents.checks.support.SUPPORT_THRESHOLD` and
`COMMON_ZIPF`: every sentence of the clean posts (supported) against the planted
sentences of the UNSUPPORTED posts, for each common-word cut-off and threshold.

    python -m benchmarks.quality                 # both parts, bundled model (~15 min)
    python -m benchmarks.quality --papers 3      # the first 3 papers only
    python -m benchmarks.quality --generations-only --show 3  # part 1, 3 posts in full
    python -m benchmarks.quality --checks-only   # part 2 only, no model (~10 s)
    python -m benchmarks.quality --tune-support  # the support check's sweep only (~2 s)
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

from agents.checks import compose, prose, rules, support, verdicts
from agents.checks.findings import Finding
from agents.checks.sentences import is_hashtag_line, split_sentences
from agents.llm.chat import open_model
from agents.teams.hierarchy import RECURSION_LIMIT, build_graph, build_verification_graph
from agents.teams.nodes import RunContext
from agents.teams.state import initial_state
from db.enums import EventKind
from db.events import Event
from db.models import PostRequest
from graph.settings import Settings
from tests import devset
from tests.fakes import scripted

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
#: The sweep of `--tune-support`: common-word cut-offs (wordfreq Zipf; 9 = none) and
#: thresholds.
ZIPF_GRID = (4.5, 5.0, 5.5, 6.0, 9.0)
THRESHOLD_GRID = tuple(
    sorted({round(0.4 + 0.025 * i, 3) for i in range(13)} | {support.SUPPORT_THRESHOLD})
)


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text())


def post_figures(post: str, *, title: str, context: str) -> dict[str, Any]:
    """What part 1 measures on one post: `unsupported` (sentences with an unsupported
    claim or content), `long` (sentences over `prose.MAX_SENTENCE_WORDS`), `repeated`
    (sentences that repeat a sentence or a phrase), `body` and `supported` (body
    sentences, i.e. statements that the support check scores, and how many pass)."""
    tech = verdicts.technical_findings(post, title=title, context=context)
    units = [s for s in split_sentences(post) if not is_hashtag_line(s)]
    body = [s for s in units if support.is_scored(s)]
    scores = [support.sentence_support(s, title=title, context=context) for s in body]
    return {
        "unsupported": len({f.sentence for f in tech if f.sentence}),
        "long": sum(1 for s in units if prose.long_sentence_issue(s, title=title)),
        "repeated": len(prose.repetitions(post, title=title)),
        "body": len(body),
        "supported": sum(1 for s in scores if s.supported),
    }


async def generate(model: BaseChatModel, paper: dict[str, Any]) -> dict[str, Any]:
    """Run the graph on one paper; return its figures (see the module docstring)."""
    usage = {"calls": 0, "tokens": 0}
    writer: dict[str, Any] = {"facts": [], "passed": []}

    async def emit(event: Event) -> None:
        if event.kind == EventKind.LLM_USAGE:
            usage["calls"] += 1
            usage["tokens"] += int(event.data.get("total_tokens") or 0)
        elif event.kind == EventKind.TOOL_CALL and event.data.get("tool") == "check_sentence":
            writer["checking"] = event.data["args"]["sentence"]
        elif event.kind == EventKind.TOOL_RESULT and event.data.get("tool") == "plan_post":
            plan = event.data["result"]
            writer["facts"] = [plan["hook"], *plan["points"]]
        elif event.kind == EventKind.TOOL_RESULT and event.data.get("tool") == "check_sentence":
            if event.data["result"]["passed"]:
                writer["passed"].append(writer.get("checking", ""))

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
    return {
        "id": paper["id"],
        "status": status,
        "approved": bool(reports) and all(r["approved"] for r in reports),
        **post_figures(post, title=paper["title"], context=paper["context"]),
        "hard": len(rules.style_check(post, 10)["hard_issues"]) if post else 1,
        "seconds": time.monotonic() - started,
        "calls": usage["calls"],
        "tokens": usage["tokens"],
        "revisions": out.get("revision", 0),
        "post": post,
        **_writer_figures(post, writer),
    }


def _writer_figures(post: str, writer: dict[str, Any]) -> dict[str, int]:
    """How the post's sentences were made: `paraphrased` (the model's words),
    `quoted` (a planned fact itself, in the reader's voice) and `planned` facts."""
    facts = [compose.reader_voice(f) for f in writer["facts"]]
    kept = [s for s in writer["passed"] if s and s in post and not s.endswith("?")]
    quoted = sum(1 for s in kept if any(compose.is_repeat(s, f) for f in facts))
    return {"paraphrased": len(kept) - quoted, "quoted": quoted, "planned": len(facts)}


async def verify(
    model: BaseChatModel, post: dict[str, Any], paper: dict[str, Any]
) -> tuple[devset.Judged, bool]:
    """Run the Verification team on a development-set post; return how its checks'
    findings judge against the planted flaw (`devset.judge`) and whether every report
    approved the post."""
    request = PostRequest(
        paper_title=paper["title"],
        additional_context=paper["context"],
        max_hashtags=post["max_hashtags"],
    )
    state = initial_state(request, max_revisions=0)
    state.update(draft={"content": post["post"], "hashtags": []}, draft_round=0)
    out = await build_verification_graph().ainvoke(state, context=RunContext(model=model))
    reports = out["reports"]
    found = [Finding(**f) for r in reports for f in r["checks"].get("findings", [])]
    return devset.judge(post, found), all(r["approved"] for r in reports)


async def part_generations(
    model: BaseChatModel, papers: list[dict[str, Any]], *, show: int = 0
) -> None:
    """Print the per-paper table and the generation targets (and the first `show`
    posts in full)."""
    rows = []
    print(f"{'paper':<24} {'status':<10} {'appr':<4} {'unsup':>5} {'long':>4} {'rep':>3} "
          f"{'hard':>4} {'sec':>6} {'calls':>5} {'tokens':>6} {'rev':>3} "
          f"{'own/quoted/facts':>16}")  # fmt: skip
    for paper in papers:
        row = await generate(model, paper)
        rows.append(row)
        verdict = "yes" if row["approved"] else "no"
        print(f"{row['id'][:24]:<24} {row['status'][:10]:<10} {verdict:<4} "
              f"{row['unsupported']:>5} {row['long']:>4} {row['repeated']:>3} {row['hard']:>4} "
              f"{row['seconds']:>6.1f} {row['calls']:>5} {row['tokens']:>6} "
              f"{row['revisions']:>3} "
              f"{row['paraphrased']:>6}/{row['quoted']}/{row['planned']:<7}")  # fmt: skip
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    approved = [r for r in completed if r["approved"]]
    body = sum(r["body"] for r in approved)
    supported = sum(r["supported"] for r in approved)
    share = f"{supported / body:.0%}" if body else "n/a"
    print(f"\ncompleted {len(completed)}/{len(rows)}; hard-limit violations "
          f"{sum(r['hard'] for r in completed)}; approved {len(approved)}/{len(rows)} "
          f"(target >= 10/14); median {statistics.median(r['seconds'] for r in rows):.1f} s "
          f"(target <= 30 s)")  # fmt: skip
    print(f"approved posts: with an unsupported sentence "
          f"{sum(1 for r in approved if r['unsupported'])}; with a repeated phrase or "
          f"sentence {sum(1 for r in approved if r['repeated'])} (target 0); with a sentence "
          f"over {prose.MAX_SENTENCE_WORDS} words {sum(1 for r in approved if r['long'])} "
          f"(target 0); body sentences supported {supported}/{body} = {share} "
          f"(target >= 90%)")  # fmt: skip
    own = sum(r["paraphrased"] for r in completed)
    quoted = sum(r["quoted"] for r in completed)
    print(f"the writer's sentences: {own} in the model's words, {quoted} the planned fact "
          f"itself, of {sum(r['planned'] for r in completed)} planned facts")  # fmt: skip
    for row in rows[:show]:
        print(f"\n--- {row['id']} (approved: {row['approved']}) ---\n{row['post']}")


async def part_flaws(model: BaseChatModel, posts: list[dict[str, Any]], papers: dict) -> None:
    """Print recall by planted flaw kind, precision by check kind, clean posts approved."""
    recall: dict[str, list[bool]] = defaultdict(list)
    fired: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    clean: list[bool] = []
    for post in posts:
        judged, approved = await verify(model, post, papers[post["paper_id"]])
        if post["flaw"] is None:
            clean.append(approved and judged.clean_passed)
        else:
            recall[post["flaw"]].append(bool(judged.caught) and not approved)
        for kind, (n, right) in judged.kinds.items():
            fired[kind][0] += n
            fired[kind][1] += right
    print(f"{'planted flaw':<22} {'posts':>5} {'recall':>7}   caught by")
    for kind, results in sorted(recall.items()):
        by = ", ".join(sorted(devset.CATCHES[kind]))
        print(f"{kind:<22} {len(results):>5} {sum(results):>3}/{len(results):<3}   {by}")
    flawed = [ok for r in recall.values() for ok in r]
    print(f"{'ALL':<22} {len(flawed):>5} {sum(flawed):>3}/{len(flawed):<3}")
    print(f"\n{'check kind':<22} {'found':>5} {'precision':>9}")
    for kind, (n, right) in sorted(fired.items()):
        print(f"{kind:<22} {n:>5} {right:>4}/{n:<4}")
    print(f"\nclean posts approved with no finding: {sum(clean)}/{len(clean)}")


def tune_support(posts: list[dict[str, Any]], papers: dict[str, dict[str, Any]]) -> None:
    """Print the sweep behind `support.SUPPORT_THRESHOLD` and `support.COMMON_ZIPF` (see
    the module docstring): per cut-off, the scores' gap and, per threshold, the clean
    sentences rejected and the unsupported ones let through."""
    labelled: set[tuple[str, str, bool]] = set()
    for post in posts:
        if post["flaw"] is None:
            labelled |= {(post["paper_id"], s, True) for s in split_sentences(post["post"])}
        elif post["flaw"] == "UNSUPPORTED":
            labelled |= {(post["paper_id"], s, False) for s in devset.planted_sentences(post)}
    good = sum(ok for *_, ok in labelled)
    print(f"support sweep: {good} sentences of clean posts, {len(labelled) - good} planted "
          f"unsupported sentences; current zipf {support.COMMON_ZIPF}, "
          f"threshold {support.SUPPORT_THRESHOLD}")  # fmt: skip
    print(f"{'zipf':>4} {'lowest clean':>12} {'highest unsup':>13}  "
          + " ".join(f"{t:>5}" for t in THRESHOLD_GRID))  # fmt: skip
    for zipf in ZIPF_GRID:
        scored = []
        for paper_id, sentence, ok in sorted(labelled):
            paper = papers[paper_id]
            s = support.sentence_support(
                sentence, title=paper["title"], context=paper["context"], zipf=zipf
            )
            scored.append((s.score if s.scored else None, ok))
        low = min((x for x, ok in scored if ok and x is not None), default=1.0)
        high = max((x if x is not None else 1.0 for x, ok in scored if not ok), default=0.0)
        cells = []
        for t in THRESHOLD_GRID:
            rejected = sum(1 for x, ok in scored if ok and x is not None and x < t)
            passed = sum(1 for x, ok in scored if not ok and (x is None or x >= t))
            cells.append(f"{rejected}/{passed}")
        print(f"{zipf:>4} {low:>12.3f} {high:>13.3f}  " + " ".join(f"{c:>5}" for c in cells))
    print(
        "cells: clean sentences rejected / unsupported sentences passed (an unscored "
        "sentence passes)"
    )


async def main(args: argparse.Namespace) -> None:
    """Run the parts `args` asks for with the configured (or the checks-only) model."""
    papers = _load("papers.json")[: args.papers]
    posts = _load("posts.json")
    by_id = {p["id"]: p for p in _load("papers.json")}
    if args.tune_support:
        tune_support(posts, by_id)
        return
    if args.checks_only:  # no model at all: the scripted judge always approves
        print("planted flaws (Verification team, checks only)")
        await part_flaws(scripted(), posts, by_id)
        return
    settings = Settings()
    async with open_model(settings.llm_config()) as source:
        model = source.factory()
        print(f"model: {settings.llm_provider} / {source.name}\n")
        if not args.skip_generation:
            await part_generations(model, papers, show=args.show)
        if args.generations_only:
            return
        print("\nplanted flaws (Verification team)")
        await part_flaws(model, posts, by_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="post quality on the development set")
    parser.add_argument("--papers", type=int, default=None, help="only the first N papers")
    parser.add_argument("--checks-only", action="store_true", help="part 2 only, no model")
    parser.add_argument("--skip-generation", action="store_true", help="part 2 only")
    parser.add_argument("--generations-only", action="store_true", help="part 1 only")
    parser.add_argument("--show", type=int, default=0, help="print the first N posts")
    parser.add_argument(
        "--tune-support", action="store_true", help="the support check's sweep only"
    )
    asyncio.run(main(parser.parse_args()))
