"""The verifiers' deterministic reports: what the TechVerifier and the StyleChecker find
before any model judges the post, as kinded findings (`Finding`) and as reports.

- Technical (`technical_findings`, `technical_report`): every factual sentence must be
  supported by the user's title and context (`agents.checks.grounding`: numbers with units,
  dates, named entities, attribution, comparisons; `agents.checks.support`: the sentence's
  content words as a whole), no sentence may turn the context around
  (`agents.checks.polarity`: "uses attention" for "uses no attention"), and no word may
  overstate a result (`rules.OVERSTATED_CLAIMS`).
- Style (`agents.checks.style`: `style_findings`, `style_report`): LinkedIn's hard
  limits, the reader's voice, a hook that states the key idea, and how the post reads.

Every hard finding fails its report; soft ones lower the score. A report's score is the
share of its sentences with no finding, minus `rules.ISSUE_PENALTY` per post-level or
soft finding (`rules.sentence_score`). For the writer: `rejected_sentences` (the
sentences of a text a verifier would reject outright) and `sentence_problems` (why one
sentence would be rejected). `Finding`, the kinds and the score are in
`agents.checks.findings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from agents.checks import findings, grounding, polarity, rules, support
from agents.checks.findings import Finding
from agents.checks.sentences import is_hashtag_line, split_sentences
from agents.checks.style import hook_findings, sentence_style


def _sentence_tech(
    sentence: str, *, title: str, context: str, position: int | None = None
) -> list[Finding]:
    """The TechVerifier's findings on one sentence: claims, overstated words, a reversal
    of the context (not in a question), support."""
    found = [
        Finding(
            c.kind, f'unsupported claim: "{c.sentence}": {c.reason}', c.sentence, True, position
        )
        for c in grounding.check_grounding(sentence, title=title, context=context)
    ]
    found += [
        Finding("OVERSTATED", f"overstated claim: '{word}'", sentence, True, position)
        for word in rules.overstated_claims_in(sentence)
    ]
    if not is_hashtag_line(sentence) and support.is_scored(sentence):
        found += [
            Finding("CONTRADICTION", issue, sentence, True, position)
            for issue in polarity.contradictions(sentence, title=title, context=context)
        ]
    if not is_hashtag_line(sentence):
        s = support.sentence_support(sentence, title=title, context=context)
        if not s.supported:
            found.append(Finding("SUPPORT", support.support_issue(s), sentence, True, position))
    return found


def says_something(sentence: str, title: str) -> bool:
    """True for a sentence that tells the reader something about the paper: a statement
    (not a question, heading or link line) with a content word (`agents.checks.support`) that
    is not a word of the title."""
    if not support.is_scored(sentence):
        return False
    title_words = {w.lower() for w in support.content_words(title)}
    return any(w.lower() not in title_words for w in support.content_words(sentence))


NOTHING_SAID = (
    "nothing said: the post states nothing about the paper beyond its title, so there "
    "is nothing to verify (the request gave nothing to write from: paste the abstract "
    "as additionalContext, or give an arXiv id or link as paperTitle with sources on)"
)


def technical_findings(post: str, *, title: str, context: str) -> list[Finding]:
    """The TechVerifier's findings on `post`, in post order, all hard: unsupported
    claims (one per claim), overstated words, unsupported content (one per sentence
    below `support.SUPPORT_THRESHOLD`), and NOTHING_SAID for a post none of whose
    sentences `says_something` (a title and a question: what an empty context or a
    failed fetch leaves; approving it would mean approving nothing). Only `title` and
    `context` count as the source, never model notes."""
    found: list[Finding] = []
    units = findings.numbered(post)
    for position, sentence in units:
        found += _sentence_tech(sentence, title=title, context=context, position=position)
    if not any(says_something(sentence, title) for _, sentence in units):
        found.append(Finding("NOTHING_SAID", NOTHING_SAID, None, True))
    return found


def technical_report(post: str, *, title: str, context: str) -> dict[str, Any]:
    """Check `post`'s claims and content against `title` and `context` only.

    Returns `{"unsupported_claims": [{"sentence", "kind", "reason"}], "overstated_claims":
    [...], "unsupported_content": [{"sentence", "score", "missing"}], "findings":
    [{"kind", "issue", "sentence", "hard", "position"}] (distinct issues), "sentences": n,
    "issues": [...], "score": 0..1, "passed": bool}`; each issue quotes its sentence;
    `score` is the share of the `sentences` (hashtag line left out) with no finding;
    `passed` when nothing was found.
    """
    claims = grounding.check_grounding(post, title=title, context=context)
    found = technical_findings(post, title=title, context=context)
    units = findings.units(post)
    content = [
        support.sentence_support(f.sentence, title=title, context=context)
        for f in found
        if f.kind == "SUPPORT" and f.sentence
    ]
    return {
        "unsupported_claims": [
            {"sentence": c.sentence, "kind": c.kind, "reason": c.reason} for c in claims
        ],
        "overstated_claims": rules.overstated_claims_in(post),
        "unsupported_content": [
            {"sentence": s.sentence, "score": s.score, "missing": list(s.missing)} for s in content
        ],
        "findings": [asdict(f) for f in findings.distinct(found)],
        "sentences": len(units),
        "issues": [f.issue for f in findings.distinct(found)],
        "score": findings.score(found, len(units)),
        "passed": not found,
    }


def rejected_sentences(post: str, *, title: str, context: str) -> set[str]:
    """The sentences of `post` (as `agents.checks.sentences.split_sentences` gives them) a verifier
    would reject outright: unsupported claims or content, overstated words, the
    authors' voice, more than `prose.MAX_SENTENCE_WORDS` words, mangled terms, and a
    sentence that repeats an earlier sentence of `post` or a phrase said before it (the
    first occurrence is kept; a word-for-word copy is left to `compose.dedupe_sentences`,
    since dropping it by its text would drop the first too). The hook rules are left
    out: which sentence becomes the hook is decided later (`sentence_problems(...,
    first=True)` has them)."""
    bad = {f.sentence for f in technical_findings(post, title=title, context=context)}
    sentences = [s for s in split_sentences(post) if not is_hashtag_line(s)]
    for k, sentence in enumerate(sentences):
        found = sentence_style(sentence, title=title, context=context, others=sentences[:k])
        if any(f.kind != "REPETITION" or sentence not in sentences[:k] for f in found):
            bad.add(sentence)
    return {s for s in bad if s}


def sentence_problems(
    sentence: str,
    *,
    title: str,
    context: str,
    others: Sequence[str] = (),
    first: bool = False,
) -> list[str]:
    """Why one `sentence` may not go into a post about `title`/`context`: every issue
    a verifier would raise on it (each quoting it), empty when it may.

    The TechVerifier's sentence checks (claims, overstated words, support) and the
    StyleChecker's (authors' voice, length, mangled terms), plus repetition of
    `others` (the post's other sentences, in any order: a sentence equal or near-equal
    to one of them, or sharing a `prose.REPEATED_PHRASE_WORDS`-word phrase), and with
    `first=True` (it opens the post) the hook rules: no filler, no pronoun with nothing
    before it. Meant for a writer that regenerates a sentence with the reasons."""
    found = _sentence_tech(sentence, title=title, context=context)
    found += sentence_style(sentence, title=title, context=context, others=others)
    if first:
        found += hook_findings(sentence)
    return list(dict.fromkeys(f.issue for f in found))


__all__ = [
    "NOTHING_SAID",
    "rejected_sentences",
    "says_something",
    "sentence_problems",
    "technical_findings",
    "technical_report",
]
