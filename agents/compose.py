"""Pure text helpers that build a post: de-duplication, claim stripping, key sentences,
hashtag suggestions and the final layout within LinkedIn's limits."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from agents.checks import (
    LINKEDIN_MAX_CHARS,
    SEE_MORE_FOLD,
    numbers_in,
    overstated_claims_in,
    sentences,
    without_hashtags,
)

#: Sentences at least this similar (difflib ratio, 0..1) count as repeats.
NEAR_DUPLICATE_RATIO = 0.85

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
    body = without_hashtags(body)
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
