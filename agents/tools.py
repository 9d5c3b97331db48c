"""LangChain tools of the teams, and the deterministic checks behind them.

The checks do what code does better than a model: LinkedIn's hard limits, the hook
before the "see more" fold, numbers in the post that the research does not contain,
overstated-claim words. Models add judgement on top; they never replace these.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from langchain_core.tools import tool

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
#: Sentences at least this similar (difflib ratio, 0..1) count as repeats.
NEAR_DUPLICATE_RATIO = 0.85
#: Integers below this are counts and list numbers ("3 takeaways"), not claims.
SMALL_NUMBER = 10

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(\s?%)?")
_HASHTAG = re.compile(r"(?<!\w)#(\w+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOPWORDS = frozenset(
    "a an and are as at be by for from how in is it its of on or the their this to via "
    "we with without what when where which who why all you your our using towards toward "
    "need needs new paper study".split()
)
#: Topic keywords -> the hashtag people follow for them.
_TOPIC_HASHTAGS = (
    ("transformer", "Transformers"),
    ("attention", "AttentionMechanism"),
    ("language model", "LLM"),
    ("llm", "LLM"),
    ("diffusion", "DiffusionModels"),
    ("reinforcement", "ReinforcementLearning"),
    ("vision", "ComputerVision"),
    ("image", "ComputerVision"),
    ("graph neural", "GraphNeuralNetworks"),
    ("translation", "MachineTranslation"),
    ("speech", "SpeechRecognition"),
    ("retrieval", "RAG"),
    ("generative", "GenerativeAI"),
    ("neural", "NeuralNetworks"),
    ("nlp", "NLP"),
    ("natural language", "NLP"),
)
_GENERIC_HASHTAGS = ("MachineLearning", "AI", "DeepLearning", "Research")


# --- helpers (pure functions; the tools below wrap them) -------------------------------


def numbers_in(text: str) -> set[str]:
    """Return the numeric claims in `text`, normalised ("1,000" -> "1000", "5 %" -> "5%").

    Integers below `SMALL_NUMBER` are left out (counts and list numbers), unless they
    are percentages.
    """
    found = set()
    for match in _NUMBER.finditer(text):
        digits = match.group(1).replace(",", "")
        if "." not in digits and int(digits) < SMALL_NUMBER and not match.group(2):
            continue
        found.add(digits.rstrip(".") + ("%" if match.group(2) else ""))
    return found


def hashtags_in(text: str) -> list[str]:
    """Return the hashtags of `text` without '#', in order of appearance."""
    return _HASHTAG.findall(text)


def sentences(text: str) -> list[str]:
    """Split `text` into trimmed sentences (on . ! ? followed by white space)."""
    out = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _SENTENCE.split(line) if s.strip())
    return out


def _sentence_key(sentence: str) -> str:
    return re.sub(r"\W+", " ", sentence.lower()).strip()


def _similar(a: str, b: str) -> bool:
    """True for near-repeats ("...this technique..." vs "...this technology...")."""
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= NEAR_DUPLICATE_RATIO


def dedupe_sentences(text: str, *, max_chars: int, already: Iterable[str] = ()) -> str:
    """Drop repeated and near-repeated sentences (small models loop) and cut `text`
    at a sentence end within `max_chars`; paragraphs are kept. Sentences like those in
    `already` (text placed elsewhere in the post) count as repeats too."""
    seen: set[str] = {_sentence_key(s) for s in already}
    paragraphs, used = [], 0
    for paragraph in re.split(r"\n\s*\n", text):
        kept = []
        for sentence in sentences(paragraph):
            key = _sentence_key(sentence)
            if not key or any(_similar(key, other) for other in seen):
                continue
            if used + len(sentence) + 1 > max_chars:
                break
            seen.add(key)
            kept.append(sentence)
            used += len(sentence) + 1
        if kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(paragraphs)


def drop_trailing_fragment(text: str) -> str:
    """Remove an unfinished last sentence (output cut by the token limit)."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in ".!?…\"')":
        return stripped
    cut = max(stripped.rfind(c) for c in ".!?…")
    return stripped[: cut + 1] if cut > 0 else stripped


def overstated_claims_in(text: str) -> list[str]:
    """Return the `OVERSTATED_CLAIMS` phrases found in `text` (case-insensitive)."""
    lowered = text.lower()
    return [p for p in OVERSTATED_CLAIMS if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", lowered)]


def hook_of(post: str) -> str:
    """Return the post's hook: its first non-empty line."""
    return next((line.strip() for line in post.splitlines() if line.strip()), "")


def hashtags_for(title: str, text: str, max_hashtags: int) -> list[str]:
    """Suggest up to `max_hashtags` hashtags (without '#') for a post on paper `title`.

    Topic tags come first (from keywords in title and `text`), then CamelCase tags of
    the title's key words, then generic ML tags. Case-insensitively unique.
    """
    haystack = f"{title}\n{text}".lower()
    candidates = [tag for key, tag in _TOPIC_HASHTAGS if key in haystack]
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9-]+", title) if w.lower() not in _STOPWORDS]
    candidates += ["".join(p.capitalize() for p in w.split("-")) for w in words if len(w) > 3]
    candidates += list(_GENERIC_HASHTAGS)
    out: list[str] = []
    for tag in candidates:
        if tag.lower() not in {t.lower() for t in out}:
            out.append(tag)
    return out[: max(0, max_hashtags)]


def extract_key_sentences(text: str, *, limit: int) -> list[str]:
    """Return up to `limit` sentences of `text` that carry facts: those with numbers
    first, then the rest in order. Used to ground takeaways in the user's context."""
    all_sentences = [s for s in sentences(text) if len(s) > 20]
    with_numbers = [s for s in all_sentences if numbers_in(s)]
    rest = [s for s in all_sentences if s not in with_numbers]
    return (with_numbers + rest)[:limit]


def score_from_issues(issues: list[str]) -> float:
    """Deterministic score: 1.0 minus 0.25 per issue, floored at 0."""
    return max(0.0, 1.0 - 0.25 * len(issues))


def technical_check(post: str, source_text: str) -> dict[str, Any]:
    """Check `post` against `source_text` (title, context and research notes).

    Returns `{"unsupported_numbers": [...], "overstated_claims": [...], "issues": [...],
    "score": 0..1, "passed": bool}`; `passed` is True when no issue was found.
    """
    unsupported = sorted(numbers_in(post) - numbers_in(source_text))
    overstated = overstated_claims_in(post)
    issues = [f"number not found in the research notes: {n}" for n in unsupported]
    issues += [f"overstated claim: '{w}'" for w in overstated]
    return {
        "unsupported_numbers": unsupported,
        "overstated_claims": overstated,
        "issues": issues,
        "score": score_from_issues(issues),
        "passed": not issues,
    }


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
    hard: list[str] = []
    soft: list[str] = []
    if len(post) > LINKEDIN_MAX_CHARS:
        hard.append(f"post is {len(post)} characters; LinkedIn allows {LINKEDIN_MAX_CHARS}")
    if len(tags) > max_hashtags:
        hard.append(f"{len(tags)} hashtags; at most {max_hashtags} allowed")
    if not hook:
        hard.append("the post has no hook line")
    elif len(hook) > SEE_MORE_FOLD:
        hard.append(
            f"the hook is {len(hook)} characters; it must end before the "
            f"~{SEE_MORE_FOLD}-character 'see more' fold"
        )
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


def strip_claims(text: str, *, numbers: list[str], words: list[str]) -> str:
    """Remove the sentences of `text` that contain any of `numbers` or `words`
    (the fix for a TechVerifier report); paragraphs are kept."""
    if not numbers and not words:
        return text
    kept_paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text):
        kept = [
            s
            for s in sentences(paragraph)
            if not (numbers_in(s) & set(numbers)) and not set(overstated_claims_in(s)) & set(words)
        ]
        if kept:
            kept_paragraphs.append(" ".join(kept))
    return "\n\n".join(kept_paragraphs)


def compose_post(
    *,
    title: str,
    body: str,
    takeaways: list[str],
    question: str,
    hashtags: list[str],
) -> str:
    """Assemble a LinkedIn post within the hard limits.

    Layout: hook line, body, "Key takeaways" bullets, question, hashtags. The hook is
    the body's first sentence when it fits before `SEE_MORE_FOLD`, otherwise a hook
    made from `title`. Hashtags inside `body` are removed (the tag line is the only
    place for them); the body is cut at a sentence end so the whole post stays within
    `LINKEDIN_MAX_CHARS`.
    """
    body = _HASHTAG.sub("", body)
    body = re.sub(r"[ \t]+", " ", body).strip()
    body = drop_trailing_fragment(body)
    first = next(iter(sentences(body)), "")
    if first and len(first) <= SEE_MORE_FOLD - 2 and not first.endswith(":"):
        hook = first
        body = body[len(first) :].strip() if body.startswith(first) else body
    else:
        hook = f'New paper worth your time: "{title[: SEE_MORE_FOLD - 40]}"'
    tag_line = " ".join(f"#{t}" for t in hashtags)
    bullets = "\n".join(f"• {t.strip()}" for t in takeaways if t.strip())
    tail = "\n\n".join(
        part
        for part in (f"Key takeaways:\n{bullets}" if bullets else "", question, tag_line)
        if part
    )
    room = LINKEDIN_MAX_CHARS - len(hook) - len(tail) - 4
    body = dedupe_sentences(body, max_chars=max(0, room), already=[hook])
    post = "\n\n".join(part for part in (hook, body, tail) if part)
    return post[:LINKEDIN_MAX_CHARS]


# --- LangChain tools ---------------------------------------------------------------------


@tool
def collect_paper_sources(paper_title: str, additional_context: str = "") -> dict[str, Any]:
    """Gather what is known about a paper from the request itself.

    Args:
        paper_title: the paper's title as the user gave it.
        additional_context: abstract, notes or results the user pasted (may be empty).

    Returns {"sources": [{"kind", "title", "characters"}], "metrics": [...],
    "key_sentences": [...], "note": str}. No external search is configured, and the
    note says so, instead of inventing sources.
    """
    sources = [{"kind": "request", "title": paper_title, "characters": len(additional_context)}]
    return {
        "sources": sources,
        "metrics": sorted(numbers_in(additional_context)),
        "key_sentences": extract_key_sentences(additional_context, limit=5),
        "note": (
            "No external source (arXiv, Tavily) is configured: these notes rest only on the "
            "title and the context given with the request."
        ),
    }


@tool
def suggest_hashtags(paper_title: str, text: str, max_hashtags: int) -> list[str]:
    """Suggest hashtags (without '#') for a LinkedIn post about a paper.

    Args:
        paper_title: the paper's title.
        text: research notes or draft text to take topic keywords from.
        max_hashtags: the most hashtags to return (1..20).
    """
    return hashtags_for(paper_title, text, max_hashtags)


@tool
def format_linkedin_post(
    paper_title: str,
    body: str,
    takeaways: list[str],
    question: str,
    hashtags: list[str],
) -> str:
    """Assemble the final LinkedIn post: hook, body, key takeaways, question, hashtags,
    within 3000 characters and with the hook before the ~210-character fold.

    Args:
        paper_title: the paper's title (for a hook when the body has none that fits).
        body: the drafted text.
        takeaways: 2-4 short, factual takeaways.
        question: one question that invites comments.
        hashtags: hashtags without '#'.
    """
    return compose_post(
        title=paper_title, body=body, takeaways=takeaways, question=question, hashtags=hashtags
    )


@tool
def check_technical_accuracy(post: str, source_text: str) -> dict[str, Any]:
    """Check a post's technical claims against the research notes.

    Args:
        post: the full post text.
        source_text: title, user context and research notes the post must agree with.

    Returns unsupported numbers, overstated-claim words, issues, a score 0..1 and
    whether the check passed.
    """
    return technical_check(post, source_text)


@tool
def check_linkedin_style(post: str, max_hashtags: int) -> dict[str, Any]:
    """Check a post against LinkedIn's limits: 3000 characters, at most `max_hashtags`
    hashtags, a hook that ends before the ~210-character "see more" fold, a question.

    Args:
        post: the full post text.
        max_hashtags: the most hashtags the user allows (1..20).
    """
    return style_check(post, max_hashtags)
