"""What the verifiers' deterministic checks find: a `Finding` (kinded, hard or soft, on a
sentence or the post as a whole), the kinds each verifier reports, the sentences a
score counts (`units`, `numbered`) and the score of a list of findings (`score`).

Imports: `agents.checks.grounding` (the claim kinds), `agents.checks.sentences` (the
sentence splitter) and `agents.checks.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.checks import grounding, rules
from agents.checks.sentences import is_hashtag_line, split_sentences

#: Kinds of finding of each verifier. TechVerifier: the grounding kinds, OVERSTATED,
#: CONTRADICTION (`agents.checks.polarity`), SUPPORT and NOTHING_SAID (the post as a whole
#: makes no claim to check).
#: StyleChecker: LENGTH (characters), HASHTAGS, HOOK (missing, or past the fold),
#: FILLER_HOOK, PRONOUN_HOOK, AUTHOR_VOICE, LONG_SENTENCE, REPETITION, MANGLED_TERM, and
#: the soft QUESTION (none) and STOCK_QUESTION.
TECH_KINDS = (*grounding.KINDS, "OVERSTATED", "CONTRADICTION", "SUPPORT", "NOTHING_SAID")
STYLE_KINDS = (
    "LENGTH",
    "HASHTAGS",
    "HOOK",
    "FILLER_HOOK",
    "PRONOUN_HOOK",
    "AUTHOR_VOICE",
    "LONG_SENTENCE",
    "REPETITION",
    "MANGLED_TERM",
    "QUESTION",
    "STOCK_QUESTION",
)


@dataclass(frozen=True)
class Finding:
    """One issue of a post: its `kind` (one of `TECH_KINDS` or `STYLE_KINDS`), the
    `issue` text shown to people (quoting the sentence), the `sentence` it is about
    (verbatim, as `agents.checks.sentences.split_sentences` gives it; None for the post as a whole),
    whether it is `hard` (fails the report) or soft (lowers the score), and `position`,
    the sentence's index among the post's counted sentences (`units`; None for the post
    as a whole or the hashtag line)."""

    kind: str
    issue: str
    sentence: str | None = None
    hard: bool = True
    position: int | None = None


def units(post: str) -> list[str]:
    """The sentences of `post` that a score counts: every unit but the hashtag line."""
    return [s for s in split_sentences(post) if not is_hashtag_line(s)]


def numbered(post: str) -> list[tuple[int | None, str]]:
    """Every unit of `post` with its `Finding.position` (None for the hashtag line)."""
    out: list[tuple[int | None, str]] = []
    k = 0
    for sentence in split_sentences(post):
        if is_hashtag_line(sentence):
            out.append((None, sentence))
        else:
            out.append((k, sentence))
            k += 1
    return out


def distinct(found: list[Finding]) -> list[Finding]:
    """`found` without repeated issues, first occurrences in post order (a sentence said
    ten times is one issue)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in found:
        if (f.kind, f.issue) not in seen:
            seen.add((f.kind, f.issue))
            out.append(f)
    return out


def score(found: list[Finding], sentences: int) -> float:
    """`rules.sentence_score` of `found` over the post's `sentences` counted sentences:
    a hard finding on one of them fails it; any other finding (post-level, soft, on the
    hashtag line) is a penalty, counted once per distinct issue."""
    failing = {f.position for f in found if f.hard and f.position is not None}
    penalties = {f.issue for f in found if not f.hard or f.position is None}
    return rules.sentence_score(sentences, len(failing), len(penalties))
