"""Pure text helpers that build a post: de-duplication, claim stripping, key sentences
and the final layout within LinkedIn's limits. Hashtags are suggested by
`agents.checks.hashtags`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from agents.checks.rules import LINKEDIN_MAX_CHARS, SEE_MORE_FOLD, numbers_in, without_hashtags
from agents.checks.sentences import split_sentences
from agents.checks.voice import filler_hook

#: Sentences at least this similar (difflib ratio, 0..1) count as repeats.
NEAR_DUPLICATE_RATIO = 0.85


def _sentence_key(sentence: str) -> str:
    return re.sub(r"\W+", " ", sentence.lower()).strip()


def is_repeat(a: str, b: str) -> bool:
    """True when sentence `b` repeats `a`, word for word or nearly (case, punctuation and
    a changed word or two aside: `NEAR_DUPLICATE_RATIO`)."""
    return _similar(_sentence_key(a), _sentence_key(b))


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
        for sentence in split_sentences(paragraph):
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


def extract_key_sentences(text: str, *, limit: int) -> list[str]:
    """Return up to `limit` sentences of `text` that carry facts: those with numbers
    first, then the rest in order. Used to ground takeaways in the user's context."""
    all_sentences = [s for s in split_sentences(text) if len(s) > 20]
    with_numbers = [s for s in all_sentences if numbers_in(s)]
    rest = [s for s in all_sentences if s not in with_numbers]
    return (with_numbers + rest)[:limit]


#: Title words too common to show that a hook is about this paper.
_COMMON_TITLE_WORDS = frozenset(
    "about across after against all analysis approach based beyond from into learning "
    "language large model models network networks neural paper study their through toward "
    "towards training using with without".split()
)


def subject_words(title: str) -> set[str]:
    """The title's distinctive words (lower case): names, acronyms and terms of four
    or more letters that are not `_COMMON_TITLE_WORDS`."""
    words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*", title)}
    return {w for w in words if (len(w) >= 4 or w.isupper()) and w not in _COMMON_TITLE_WORDS}


def _fits_hook(sentence: str, subject: set[str]) -> bool:
    """A hook sits before the fold, is a statement, opens with no filler and names the
    paper's subject (a distinctive title word), so it carries the key idea."""
    words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*", sentence)}
    return (
        bool(sentence)
        and len(sentence) <= SEE_MORE_FOLD - 2
        and not sentence.endswith((":", "?"))
        and filler_hook(sentence) is None
        and bool(words & subject)
    )


def _cut(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters (with "…")."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


#: First-person author words -> the reader's third person ("we propose" -> "the
#: authors propose"), for sentences taken from an abstract the authors wrote.
_READER_VOICE = (
    (r"\bWe\b", "The authors"),
    (r"\bwe\b", "the authors"),
    (r"\bOur\b", "Their"),
    (r"\bour\b", "their"),
    (r"\bUs\b", "Them"),
    (r"\bus\b", "them"),
    (r"\bours\b", "theirs"),
)


def reader_voice(sentence: str) -> str:
    """`sentence` as a reader would say it: first-person author words in the third
    person ("We propose our model" -> "The authors propose their model")."""
    for pattern, replacement in _READER_VOICE:
        sentence = re.sub(pattern, replacement, sentence)
    return sentence


def compose_post(
    *,
    paper_title: str,
    key_point: str,
    body: str,
    takeaways: list[str],
    question: str,
    hashtags: list[str],
    link: str = "",
) -> str:
    """Assemble a LinkedIn post within the hard limits.

    Layout: hook line, body, "Key takeaways" bullets, the paper's link ("Paper: <url>",
    when research fetched it), question, hashtags. The hook is
    the body's first sentence when it fits before `SEE_MORE_FOLD`, opens with no filler
    and names the paper (`_fits_hook`); otherwise `key_point` (the paper's key idea or
    result, prefixed with the title's short name when it lacks it), cut to fit, and
    left out of the takeaways. Hashtags inside `body` are removed (the tag line is the
    only place for them); the body is cut at a sentence end so the whole post stays
    within `LINKEDIN_MAX_CHARS`. `paper_title` is the paper's title (a hook must name
    its subject), `hashtags` are without '#', `link` is the paper's page or "".
    """
    body = without_hashtags(body)
    body = re.sub(r"[ \t]+", " ", body).strip()
    body = drop_trailing_fragment(body)
    first = next(iter(split_sentences(body)), "")
    subject = subject_words(paper_title)
    if _fits_hook(first, subject):
        hook = first
        body = body[len(first) :].strip() if body.startswith(first) else body
    else:
        takeaways = [t for t in takeaways if t != key_point]
        if first and first == key_point:  # the hook it becomes must not repeat in the body
            body = body[len(first) :].strip()
        short = paper_title.split(":")[0].strip()
        named = _fits_hook(key_point, subject) or not key_point
        hook = _cut(key_point if named else f"{short}: {key_point}", SEE_MORE_FOLD - 2)
    tag_line = " ".join(f"#{t}" for t in hashtags)
    bullets = "\n".join(f"• {t.strip()}" for t in takeaways if t.strip())
    tail = "\n\n".join(
        part
        for part in (
            f"Key takeaways:\n{bullets}" if bullets else "",
            f"Paper: {link}" if link else "",
            question,
            tag_line,
        )
        if part
    )
    room = LINKEDIN_MAX_CHARS - len(hook) - len(tail) - 4
    body = dedupe_sentences(body, max_chars=max(0, room), already=[hook])
    post = "\n\n".join(part for part in (hook, body, tail) if part)
    return post[:LINKEDIN_MAX_CHARS]
