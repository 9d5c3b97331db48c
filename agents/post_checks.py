"""The verifiers' deterministic reports: what the TechVerifier and the StyleChecker find
before any model judges the post.

- Technical (`technical_report`): every factual sentence must be supported by the
  user's title and context (`agents.grounding`: numbers with units, dates, named
  entities, attribution, comparisons), and no word may overstate a result
  (`checks.OVERSTATED_CLAIMS`). Any finding fails the report.
- Style (`style_report`): LinkedIn's hard limits (`checks.style_check`), plus the
  reader's voice (no first-person author claims) and a hook that states the key idea,
  not a filler opener (issue 7's rules). These fail the report too.
"""

from __future__ import annotations

from typing import Any

from agents import checks, grounding


def technical_report(post: str, *, title: str, context: str) -> dict[str, Any]:
    """Check `post`'s claims against `title` and `context` only (never model notes).

    Returns `{"unsupported_claims": [{"sentence", "kind", "reason"}], "overstated_claims":
    [...], "issues": [...], "score": 0..1, "passed": bool}`; each unsupported sentence is
    quoted verbatim in its issue with the reason; `passed` is True when nothing was found.
    """
    claims = grounding.check_grounding(post, title=title, context=context)
    overstated = checks.overstated_claims_in(post)
    issues = [f'unsupported claim: "{c.sentence}": {c.reason}' for c in claims]
    issues += [f"overstated claim: '{word}'" for word in overstated]
    return {
        "unsupported_claims": [
            {"sentence": c.sentence, "kind": c.kind, "reason": c.reason} for c in claims
        ],
        "overstated_claims": overstated,
        "issues": issues,
        "score": checks.score_from_issues(issues),
        "passed": not issues,
    }


def style_report(post: str, max_hashtags: int) -> dict[str, Any]:
    """`checks.style_check(post, max_hashtags)` with the reader's-voice and hook rules
    added as hard issues. Same keys, plus `"author_voice"` (issues) and
    `"filler_hook"` (an issue or None)."""
    report = checks.style_check(post, max_hashtags)
    voice = grounding.author_voice_issues(post)
    filler = grounding.filler_hook(report["hook"]) if report["hook"] else None
    hard = report["hard_issues"] + voice + ([filler] if filler else [])
    soft = [i for i in report["issues"] if i not in report["hard_issues"]]
    issues = hard + soft
    return {
        **report,
        "author_voice": voice,
        "filler_hook": filler,
        "hard_issues": hard,
        "issues": issues,
        "score": checks.score_from_issues(issues),
        "passed": not hard,
    }


def rejected_sentences(post: str, *, title: str, context: str) -> set[str]:
    """The sentences of `post` a verifier would reject outright: unsupported claims,
    overstated words, author voice. The writer drops them before assembling a draft."""
    bad = {c.sentence for c in grounding.check_grounding(post, title=title, context=context)}
    for sentence in grounding.split_sentences(post):
        if checks.overstated_claims_in(sentence) or grounding.author_voice_issues(sentence):
            bad.add(sentence)
    return bad
