"""The deterministic checks of a post: what code checks better than a model.

LinkedIn's hard limits (characters, hashtag count, the hook before the "see more"
fold), numbers in the post that the user's title and context do not contain, and
words that overstate a research result. Models add judgement on top; they never
replace these.
"""

from __future__ import annotations

import re
from typing import Any

from agents.checks.claims import SMALL_NUMBER, quantities
from agents.checks.sentences import HASHTAG

#: LinkedIn's limit for the text of a post, in characters.
LINKEDIN_MAX_CHARS = 3000
#: About how many characters LinkedIn shows before "…see more" (desktop feed, 2024-25);
#: the hook must be complete before it.
SEE_MORE_FOLD = 210
#: Hashtags beyond this many make a post look spammy (LinkedIn's own guidance is 3-5).
RECOMMENDED_MAX_HASHTAGS = 5
#: Words and phrases that overstate research results; a post should not use them.
OVERSTATED_CLAIMS = (
    "revolutionary",
    "revolutionize",
    "revolutionise",
    "groundbreaking",
    "game-changer",
    "game changer",
    "game-changing",
    "unprecedented",
    "breakthrough",
    "guarantees",
    "guaranteed",
    "proves that",
    "solves",
    "solved",
    "perfect",
    "flawless",
    "always works",
    "never fails",
    "world's first",
    "magic",
    "100% accurate",
    "transformed the world",
)


def numbers_in(text: str) -> set[str]:
    """Return the numbers of `text` (`claims.quantities`, which skips numbers that are
    part of a name: "GPT-3", "ViT-22B") written plainly: "1,000" -> "1000", "5 %" and
    "5 percent" -> "5%", "175B" -> "175".

    Integers below `SMALL_NUMBER` are left out (counts and list numbers), unless they
    are percentages.
    """
    found = set()
    for q in quantities(text):
        percent = q.unit == "%"
        if "." not in q.number and float(q.number) < SMALL_NUMBER and not percent:
            continue
        found.add(q.number + ("%" if percent else ""))
    return found


def hashtags_in(text: str) -> list[str]:
    """Return the hashtags of `text` without '#', in order of appearance."""
    return HASHTAG.findall(text)


def without_hashtags(text: str) -> str:
    """Return `text` with every hashtag removed."""
    return HASHTAG.sub("", text)


def overstated_claims_in(text: str) -> list[str]:
    """Return the `OVERSTATED_CLAIMS` phrases found in `text` (case-insensitive)."""
    lowered = text.lower()
    return [p for p in OVERSTATED_CLAIMS if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", lowered)]


def hook_of(post: str) -> str:
    """Return the post's hook: its first non-empty line."""
    return next((line.strip() for line in post.splitlines() if line.strip()), "")


#: What one issue of the post as a whole (a limit, a missing question) costs a score.
ISSUE_PENALTY = 0.25


def score_from_issues(issues: list[str]) -> float:
    """Deterministic score: 1.0 minus `ISSUE_PENALTY` per issue, floored at 0."""
    return max(0.0, 1.0 - ISSUE_PENALTY * len(issues))


def sentence_score(sentences: int, failing: int, post_issues: int = 0) -> float:
    """A verifier's deterministic score, 0..1: the share of the post's `sentences` that
    pass (`failing` of them do not), minus `ISSUE_PENALTY` for each of `post_issues`
    (issues of the post as a whole, or soft ones), floored at 0. A post with no
    sentence scores as if every sentence passed. Rule: a verifier's score reflects the
    share of its sentences that pass."""
    share = 1.0 if sentences <= 0 else max(0, sentences - failing) / sentences
    return round(max(0.0, share - ISSUE_PENALTY * post_issues), 3)


#: The names of LinkedIn's hard limits, as `hard_violations` reports them.
HARD_CHECKS = ("MAX_CHARACTERS", "MAX_HASHTAGS", "HOOK", "HOOK_BEFORE_FOLD")


def hard_violations(post: str, max_hashtags: int) -> list[tuple[str, str]]:
    """The hard limits `post` breaks, as `(check, message)` with `check` one of
    `HARD_CHECKS`: over `LINKEDIN_MAX_CHARS` characters (MAX_CHARACTERS), more hashtags
    than `max_hashtags` (MAX_HASHTAGS), no hook line (HOOK), a hook that does not end
    before the `SEE_MORE_FOLD` (HOOK_BEFORE_FOLD). Empty: the post may be published."""
    hook = hook_of(post)
    tags = hashtags_in(post)
    found: list[tuple[str, str]] = []
    if len(post) > LINKEDIN_MAX_CHARS:
        found.append(
            (
                "MAX_CHARACTERS",
                f"post is {len(post)} characters; LinkedIn allows {LINKEDIN_MAX_CHARS}",
            )
        )
    if len(tags) > max_hashtags:
        found.append(("MAX_HASHTAGS", f"{len(tags)} hashtags; at most {max_hashtags} allowed"))
    if not hook:
        found.append(("HOOK", "the post has no hook line"))
    elif len(hook) > SEE_MORE_FOLD:
        message = (
            f"the hook is {len(hook)} characters; it must end before the "
            f"~{SEE_MORE_FOLD}-character 'see more' fold"
        )
        found.append(("HOOK_BEFORE_FOLD", message))
    return found


def style_check(post: str, max_hashtags: int) -> dict[str, Any]:
    """Check `post` against LinkedIn's hard limits and the house style.

    Hard (fail the check): over `LINKEDIN_MAX_CHARS` characters, more hashtags than
    `max_hashtags`, an empty hook or one that does not end before `SEE_MORE_FOLD`.
    Soft (issues, lower the score): no question to invite comments, no hashtags,
    more than `RECOMMENDED_MAX_HASHTAGS` hashtags.
    Returns `{"characters", "hashtag_count", "hook", "hook_length",
    "hook_before_fold", "has_question", "hard_issues", "issues", "score", "passed"}`.
    """
    hook = hook_of(post)
    tags = hashtags_in(post)
    hard = [message for _check, message in hard_violations(post, max_hashtags)]
    soft: list[str] = []
    has_question = "?" in post
    if not has_question:
        soft.append("no question to invite comments")
    if not tags:
        soft.append("no hashtags")
    elif len(tags) > RECOMMENDED_MAX_HASHTAGS and len(tags) <= max_hashtags:
        soft.append(f"{len(tags)} hashtags; {RECOMMENDED_MAX_HASHTAGS} or fewer read better")
    issues = hard + soft
    return {
        "characters": len(post),
        "hashtag_count": len(tags),
        "hook": hook,
        "hook_length": len(hook),
        "hook_before_fold": bool(hook) and len(hook) <= SEE_MORE_FOLD,
        "has_question": has_question,
        "hard_issues": hard,
        "issues": issues,
        "score": score_from_issues(issues),
        "passed": not hard,
    }
