"""The verifiers' deterministic reports: what the TechVerifier and the StyleChecker find
before any model judges the post, as kinded findings (`Finding`) and as reports.

- Technical (`technical_findings`, `technical_report`): every factual sentence must be
  supported by the user's title and context (`agents.checks.grounding`: numbers with units,
  dates, named entities, attribution, comparisons; `agents.checks.support`: the sentence's
  content words as a whole), no sentence may turn the context around
  (`agents.checks.polarity`: "uses attention" for "uses no attention"), and no word may
  overstate a result (`rules.OVERSTATED_CLAIMS`).
- Style (`style_findings`, `style_report`): LinkedIn's hard limits
  (`rules.style_check`), the reader's voice and a hook that states the key idea
  (`agents.checks.grounding`: no filler, no pronoun with nothing before it), and how the post
  reads (`agents.checks.prose`: sentence length, repetition, mangled terms; a stock closing
  question, soft).

Every hard finding fails its report; soft ones lower the score. A report's score is the
share of its sentences with no finding, minus `rules.ISSUE_PENALTY` per post-level or
soft finding (`rules.sentence_score`). For the writer: `rejected_sentences` (the
sentences of a text a verifier would reject outright) and `sentence_problems` (why one
sentence would be rejected).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agents.checks import grounding, polarity, prose, rules, support

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
    (verbatim, as `grounding.split_sentences` gives it; None for the post as a whole),
    whether it is `hard` (fails the report) or soft (lowers the score), and `position`,
    the sentence's index among the post's counted sentences (`_units`; None for the post
    as a whole or the hashtag line)."""

    kind: str
    issue: str
    sentence: str | None = None
    hard: bool = True
    position: int | None = None


def _units(post: str) -> list[str]:
    """The sentences of `post` that a score counts: every unit but the hashtag line."""
    return [s for s in grounding.split_sentences(post) if not grounding.is_hashtag_line(s)]


def _numbered(post: str) -> list[tuple[int | None, str]]:
    """Every unit of `post` with its `Finding.position` (None for the hashtag line)."""
    out: list[tuple[int | None, str]] = []
    k = 0
    for sentence in grounding.split_sentences(post):
        if grounding.is_hashtag_line(sentence):
            out.append((None, sentence))
        else:
            out.append((k, sentence))
            k += 1
    return out


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
    if not grounding.is_hashtag_line(sentence) and support.is_scored(sentence):
        found += [
            Finding("CONTRADICTION", issue, sentence, True, position)
            for issue in polarity.contradictions(sentence, title=title, context=context)
        ]
    if not grounding.is_hashtag_line(sentence):
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
    units = _numbered(post)
    for position, sentence in units:
        found += _sentence_tech(sentence, title=title, context=context, position=position)
    if not any(says_something(sentence, title) for _, sentence in units):
        found.append(Finding("NOTHING_SAID", NOTHING_SAID, None, True))
    return found


def _distinct(found: list[Finding]) -> list[Finding]:
    """`found` without repeated issues, first occurrences in post order (a sentence said
    ten times is one issue)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in found:
        if (f.kind, f.issue) not in seen:
            seen.add((f.kind, f.issue))
            out.append(f)
    return out


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
    units = _units(post)
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
        "findings": [asdict(f) for f in _distinct(found)],
        "sentences": len(units),
        "issues": [f.issue for f in _distinct(found)],
        "score": _score(found, len(units)),
        "passed": not found,
    }


def _limit_kind(issue: str) -> str:
    """The kind of one of `rules.style_check`'s issues (it words them, see there)."""
    if "characters; LinkedIn allows" in issue:
        return "LENGTH"
    if "hook" in issue:
        return "HOOK"
    if "question" in issue:
        return "QUESTION"
    return "HASHTAGS"


def _sentence_style(
    sentence: str,
    *,
    title: str,
    context: str,
    others: Sequence[str] = (),
    position: int | None = None,
) -> list[Finding]:
    """The StyleChecker's findings on one sentence: the authors' voice, its length, its
    mangled terms and (against `others`, the post's sentences before it) repetition."""
    if grounding.is_hashtag_line(sentence):
        return []
    issues = [("AUTHOR_VOICE", i) for i in grounding.author_voice_issues(sentence)]
    long = prose.long_sentence_issue(sentence, title=title)
    issues += [("LONG_SENTENCE", long)] if long else []
    issues += [
        ("MANGLED_TERM", i) for i in prose.mangled_terms(sentence, title=title, context=context)
    ]
    rep = prose.repeats(sentence, others, title=title)
    issues += [("REPETITION", rep.issue)] if rep else []
    return [Finding(kind, issue, sentence, True, position) for kind, issue in issues]


def _hook_findings(first: str) -> list[Finding]:
    """The hook rules on the post's first sentence: no filler, no dangling pronoun."""
    found = []
    for kind, issue in (
        ("FILLER_HOOK", grounding.filler_hook(first)),
        ("PRONOUN_HOOK", grounding.pronoun_hook(first)),
    ):
        if issue:
            found.append(Finding(kind, issue, first, True, 0))
    return found


def style_findings(
    post: str, max_hashtags: int, *, title: str = "", context: str = ""
) -> list[Finding]:
    """The StyleChecker's findings on `post`: LinkedIn's limits (`rules.style_check`,
    post-level; its soft ones soft), the hook rules on the first sentence, and per
    sentence the authors' voice, length, mangled terms and repetition; a stock closing
    question (soft). Without `title` and `context` the mangled-term and stock-question
    checks have nothing to compare with and find nothing."""
    report = rules.style_check(post, max_hashtags)
    hard = set(report["hard_issues"])
    found = [Finding(_limit_kind(i), i, None, i in hard) for i in report["issues"]]
    sentences = [s for s in grounding.split_sentences(post) if not grounding.is_hashtag_line(s)]
    if sentences and report["hook"]:
        found += _hook_findings(sentences[0])
    for k, sentence in enumerate(sentences):
        found += _sentence_style(
            sentence, title=title, context=context, others=sentences[:k], position=k
        )
    if context:
        stock = prose.stock_question(post, title=title, context=context)
        found += [Finding("STOCK_QUESTION", stock, None, hard=False)] if stock else []
    return found


def style_report(
    post: str, max_hashtags: int, *, title: str = "", context: str = ""
) -> dict[str, Any]:
    """`rules.style_check(post, max_hashtags)` with the reader's checks added
    (`style_findings`). Same keys, plus `"author_voice"` (issues), `"filler_hook"` and
    `"pronoun_hook"` (an issue or None), `"findings"` and `"sentences"`; `score` is the
    share of sentences with no finding, minus `rules.ISSUE_PENALTY` per post-level or
    soft finding; `passed` when no finding is hard."""
    report = rules.style_check(post, max_hashtags)
    every = style_findings(post, max_hashtags, title=title, context=context)
    found = _distinct(every)
    hard = [f.issue for f in found if f.hard]
    return {
        **report,
        "author_voice": [f.issue for f in found if f.kind == "AUTHOR_VOICE"],
        "filler_hook": next((f.issue for f in found if f.kind == "FILLER_HOOK"), None),
        "pronoun_hook": next((f.issue for f in found if f.kind == "PRONOUN_HOOK"), None),
        "findings": [asdict(f) for f in found],
        "sentences": len(_units(post)),
        "hard_issues": hard,
        "issues": hard + [f.issue for f in found if not f.hard],
        "score": _score(every, len(_units(post))),
        "passed": not hard,
    }


def _score(found: list[Finding], sentences: int) -> float:
    """`rules.sentence_score` of `found` over the post's `sentences` counted sentences:
    a hard finding on one of them fails it; any other finding (post-level, soft, on the
    hashtag line) is a penalty, counted once per distinct issue."""
    failing = {f.position for f in found if f.hard and f.position is not None}
    penalties = {f.issue for f in found if not f.hard or f.position is None}
    return rules.sentence_score(sentences, len(failing), len(penalties))


def rejected_sentences(post: str, *, title: str, context: str) -> set[str]:
    """The sentences of `post` (as `grounding.split_sentences` gives them) a verifier
    would reject outright: unsupported claims or content, overstated words, the
    authors' voice, more than `prose.MAX_SENTENCE_WORDS` words, mangled terms, and a
    sentence that repeats an earlier sentence of `post` or a phrase said before it (the
    first occurrence is kept; a word-for-word copy is left to `compose.dedupe_sentences`,
    since dropping it by its text would drop the first too). The hook rules are left
    out: which sentence becomes the hook is decided later (`sentence_problems(...,
    first=True)` has them)."""
    bad = {f.sentence for f in technical_findings(post, title=title, context=context)}
    sentences = [s for s in grounding.split_sentences(post) if not grounding.is_hashtag_line(s)]
    for k, sentence in enumerate(sentences):
        found = _sentence_style(sentence, title=title, context=context, others=sentences[:k])
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
    found += _sentence_style(sentence, title=title, context=context, others=others)
    if first:
        found += _hook_findings(sentence)
    return list(dict.fromkeys(f.issue for f in found))
