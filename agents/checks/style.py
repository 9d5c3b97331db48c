"""The StyleChecker's deterministic report: LinkedIn's hard limits (`rules.style_check`),
the reader's voice and a hook that states the key idea (`agents.checks.voice`: no
filler, no pronoun with nothing before it), and how the post reads
(`agents.checks.prose`: sentence length, repetition, a stock closing question, soft;
`agents.checks.terms`: mangled terms). `sentence_style` and `hook_findings` are the
per-sentence rules the writer's checks share (`agents.checks.verdicts`).

Imports: `agents.checks.findings`, `prose`, `rules`, `sentences`, `terms`, `voice`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from agents.checks import prose, rules, terms, voice
from agents.checks.findings import Finding, distinct, score, units
from agents.checks.sentences import is_hashtag_line, split_sentences


def _limit_kind(issue: str) -> str:
    """The kind of one of `rules.style_check`'s issues (it words them, see there)."""
    if "characters; LinkedIn allows" in issue:
        return "LENGTH"
    if "hook" in issue:
        return "HOOK"
    if "question" in issue:
        return "QUESTION"
    return "HASHTAGS"


def sentence_style(
    sentence: str,
    *,
    title: str,
    context: str,
    others: Sequence[str] = (),
    position: int | None = None,
) -> list[Finding]:
    """The StyleChecker's findings on one sentence: the authors' voice, its length, its
    mangled terms and (against `others`, the post's sentences before it) repetition."""
    if is_hashtag_line(sentence):
        return []
    issues = [("AUTHOR_VOICE", i) for i in voice.author_voice_issues(sentence)]
    long = prose.long_sentence_issue(sentence, title=title)
    issues += [("LONG_SENTENCE", long)] if long else []
    issues += [
        ("MANGLED_TERM", i) for i in terms.mangled_terms(sentence, title=title, context=context)
    ]
    rep = prose.repeats(sentence, others, title=title)
    issues += [("REPETITION", rep.issue)] if rep else []
    return [Finding(kind, issue, sentence, True, position) for kind, issue in issues]


def hook_findings(first: str) -> list[Finding]:
    """The hook rules on the post's first sentence: no filler, no dangling pronoun."""
    found = []
    for kind, issue in (
        ("FILLER_HOOK", voice.filler_hook(first)),
        ("PRONOUN_HOOK", voice.pronoun_hook(first)),
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
    sentences = [s for s in split_sentences(post) if not is_hashtag_line(s)]
    if sentences and report["hook"]:
        found += hook_findings(sentences[0])
    for k, sentence in enumerate(sentences):
        found += sentence_style(
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
    found = distinct(every)
    hard = [f.issue for f in found if f.hard]
    return {
        **report,
        "author_voice": [f.issue for f in found if f.kind == "AUTHOR_VOICE"],
        "filler_hook": next((f.issue for f in found if f.kind == "FILLER_HOOK"), None),
        "pronoun_hook": next((f.issue for f in found if f.kind == "PRONOUN_HOOK"), None),
        "findings": [asdict(f) for f in found],
        "sentences": len(units(post)),
        "hard_issues": hard,
        "issues": hard + [f.issue for f in found if not f.hard],
        "score": score(every, len(units(post))),
        "passed": not hard,
    }
