"""The development set (tests/data): papers, posts with planted flaws and clean posts, and
how a check's finding is judged against it. Shared by the tests and benchmarks.quality.

`papers.json`: `{"id", "title", "context", "facts"}` per paper. `posts.json`: `{"id",
"paper_id", "flaw", "max_hashtags", "post", "expect"}` per post; `flaw` is None for a
clean post (every check must pass it), else a kind of `CATCHES`, and `expect` is a
string the issue that catches it must contain. A flawed post's **planted sentences**
are those no clean post of its paper has as often (`planted_sentences`): most flawed
posts are a clean post with one sentence changed or added.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agents.checks import verdicts
from agents.checks.findings import Finding
from agents.checks.sentences import split_sentences
from agents.checks.style import style_findings

DATA = Path(__file__).resolve().parent / "data"
#: Which finding kinds (`agents.checks.verdicts`) catch each planted flaw. MISREAD (context
#: words recombined into a claim that turns the context around: "triples the GPU
#: memory" for "cuts ... by 3 times") is caught by CONTRADICTION (`agents.checks.polarity`);
#: the two posts of the set are the examples it was written from, so the figure is no
#: held-out measure.
CATCHES: dict[str, set[str]] = {
    "WRONG_NUMBER": {"NUMBER"},
    "WRONG_UNIT": {"UNIT"},
    "INVENTED_VENUE": {"ENTITY"},
    "INVENTED_ORGANISATION": {"ENTITY", "ATTRIBUTION"},
    "WRONG_ATTRIBUTION": {"ATTRIBUTION"},
    "INVENTED_DATE": {"DATE"},
    "AUTHOR_VOICE": {"AUTHOR_VOICE"},
    "OVERCLAIM": {"COMPARISON", "OVERSTATED"},
    "BURIED_HOOK": {"HOOK", "FILLER_HOOK"},
    "TOO_LONG": {"LENGTH"},
    "TOO_MANY_HASHTAGS": {"HASHTAGS"},
    "UNSUPPORTED": {"SUPPORT"},
    "REPETITION": {"REPETITION"},
    "RUN_ON": {"LONG_SENTENCE"},
    "MANGLED_TERM": {"MANGLED_TERM"},
    "PRONOUN_HOOK": {"PRONOUN_HOOK"},
    "MISREAD": {"CONTRADICTION"},
}
#: Flaws of the post as a whole: their findings quote no sentence.
POST_LEVEL = frozenset({"TOO_LONG", "TOO_MANY_HASHTAGS", "BURIED_HOOK"})


@cache
def papers() -> dict[str, dict[str, Any]]:
    """The papers of `papers.json` by id."""
    return {p["id"]: p for p in json.loads((DATA / "papers.json").read_text(encoding="utf-8"))}


@cache
def _posts() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((DATA / "posts.json").read_text(encoding="utf-8")))


def posts() -> list[dict[str, Any]]:
    """The posts of `posts.json`, in file order."""
    return list(_posts())


def planted_sentences(entry: dict[str, Any]) -> set[str]:
    """The sentences of a flawed post that no clean post of its paper has as often
    (empty for a clean post): where its flaw was planted."""
    if entry["flaw"] is None:
        return set()
    mine = Counter(split_sentences(entry["post"]))
    clean: Counter[str] = Counter()
    for other in _posts():
        if other["flaw"] is None and other["paper_id"] == entry["paper_id"]:
            clean |= Counter(split_sentences(other["post"]))
    return {s for s, n in mine.items() if n > clean[s]}


def findings(entry: dict[str, Any]) -> list[Finding]:
    """Every finding of both verifiers' checks on a development-set post."""
    paper = papers()[entry["paper_id"]]
    source = {"title": paper["title"], "context": paper["context"]}
    found = verdicts.technical_findings(entry["post"], **source)
    return found + style_findings(entry["post"], entry["max_hashtags"], **source)


@dataclass(frozen=True)
class Judged:
    """How the checks did on one post: `caught` (a hard finding of a kind that
    `CATCHES` names for its flaw, whose issue contains `expect`; None for a clean post
    or a MISREAD), `kinds` (kind -> (firings, correct firings)) where a firing is a
    finding on a distinct sentence (or on the post as a whole), correct when the post
    is flawed and the finding is on a planted sentence, or is a post-level finding of
    a post-level flaw that its kind catches."""

    entry: dict[str, Any]
    caught: bool | None
    kinds: dict[str, tuple[int, int]]

    @property
    def clean_passed(self) -> bool:
        """For a clean post: nothing was found at all."""
        return not self.kinds


def judge(entry: dict[str, Any], found: list[Finding] | None = None) -> Judged:
    """Judge the checks' `found` findings (default: `findings(entry)`) on `entry`."""
    found = findings(entry) if found is None else found
    flaw, planted = entry["flaw"], planted_sentences(entry)
    wanted = CATCHES.get(flaw or "", set())
    caught = None
    if wanted:
        caught = any(f.hard and f.kind in wanted and entry["expect"] in f.issue for f in found)
    units: dict[str, dict[str | None, bool]] = {}
    for f in found:
        if f.sentence is None:
            right = flaw in POST_LEVEL and f.kind in wanted
        else:
            right = flaw is not None and f.sentence in planted
        units.setdefault(f.kind, {})[f.sentence] = right
    kinds = {k: (len(v), sum(v.values())) for k, v in units.items()}
    return Judged(entry, caught, kinds)
