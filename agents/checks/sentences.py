"""The units of a post every check reads: `split_sentences` (pysbd, a rule-based
splitter, per line; each bullet and the hashtag line is its own unit) and
`is_hashtag_line`, and the two patterns the checks read past (`HASHTAG`, `URL`,
`without_tags_and_links`). Every check quotes a sentence as this module gives it, so the
writer, the verifiers and the reports agree on what a sentence is.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

_BULLET = re.compile(r"^\s*(?:[\u2022\u25aa\u25ba\u2192\u2705\u2714\ufe0f*-]+|\d{1,2}[.)])\s+")
_HASHTAG_LINE = re.compile(r"^(?:#\w+[\s,]*)+$")
#: A hashtag: '#' and its word (group 1), not inside a word ("C#" is no hashtag).
HASHTAG = re.compile(r"(?<!\w)#(\w+)")
#: A link as posts write them: a scheme or "www." up to the next white space.
URL = re.compile(r"https?://\S+|www\.\S+")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """Split a post into sentences: each non-empty line is split by pysbd (which knows
    "e.g.", "vs.", "28.4" and "et al."); a bullet line's marker ("• ", "- ", "1. ") is
    dropped; a hashtag-only line is one unit, kept as it is (`is_hashtag_line`)."""
    return list(_split(text))


@lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    """`split_sentences`, cached: every check splits the same post and sentences."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if is_hashtag_line(line):
            out.append(line)
            continue
        line = _BULLET.sub("", line)
        out.extend(s.strip() for s in _segmenter().segment(line) if s.strip())
    return tuple(out)


def is_hashtag_line(unit: str) -> bool:
    """True for a unit made only of hashtags ("#AI #LoRA"): hashtags are not claims."""
    return bool(_HASHTAG_LINE.match(unit.strip()))


def without_tags_and_links(text: str, *, gap: str = " ") -> str:
    """`text` with every hashtag and link replaced by `gap`, so that neither is read
    as words (a gap of " | " also keeps the words on both sides from joining a phrase)."""
    return URL.sub(gap, HASHTAG.sub(gap, text))
