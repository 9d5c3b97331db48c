"""Mangled terms, the StyleChecker's check of how a post writes the source's terms,
deterministic (`mangled_terms`): a hyphenated term of the title or context written with
mixed separators ("chain-of thought"), a name or acronym of the source in a case the
source never uses ("Gpu", "Lora", "toolformer"), unbalanced or empty brackets.

`agents.checks.style` runs it beside `agents.checks.prose`'s sentence checks.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agents.checks.claims import plain
from agents.checks.entities import is_strong
from agents.checks.sentences import is_hashtag_line, without_tags_and_links
from agents.checks.support import is_common

#: A lower-case word this frequent in English (wordfreq Zipf) is a word, not a miscased
#: acronym ("it" is not the context's "IT").
ACRONYM_WORD_ZIPF = 4.5
#: A capitalised name of the source rarer than this in English (wordfreq Zipf) is the
#: paper's coinage ("Toolformer" 0, "Chinchilla" 2.6, "Mamba" 2.6), so writing it in lower
#: case mangles it; a more frequent one is also an English word a sentence may use in
#: lower case ("segment" 4.3 beside "Segment Anything", "whisper" 3.7).
NAME_WORD_ZIPF = 3.5

_HYPHENATED = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b")
_NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")


@lru_cache(maxsize=16)
def _hyphenated_terms(source: str) -> set[tuple[str, ...]]:
    """The hyphenated terms of `source` as their lower-case parts ("chain-of-thought" ->
    ("chain", "of", "thought"))."""
    return {tuple(t.lower().split("-")) for t in _HYPHENATED.findall(source)}


def is_acronym(name: str) -> bool:
    """True for a name whose case carries meaning: a part with two capitals or an
    inner capital ("GPU", "LoRA", "GPT-3", "DeBERTa"), or letters and digits ("T5");
    not a capitalised hyphenated word ("Low-Rank", "Compute-Optimal")."""
    return any(is_strong(part) for part in name.split("-") if part)


@lru_cache(maxsize=16)
def _spellings(source: str) -> dict[str, set[str]]:
    """Names and acronyms of `source` ("GPU", "LoRA", "GPT-3"): lower case -> the ways
    the source writes them."""
    out: dict[str, set[str]] = {}
    for name in _NAME.findall(source):
        if is_acronym(name) and any(c.isalpha() for c in name):
            out.setdefault(name.lower(), set()).add(name)
    return out


def _mixed_separators(sentence: str, terms: set[tuple[str, ...]]) -> list[tuple[str, str]]:
    """Each hyphenated term of the source written in `sentence` with separators that
    mix hyphens and spaces, or a hyphen with a space beside it: (as written, expected)."""
    found = []
    for parts in terms:
        pattern = r"(?<![\w-])" + r"(\s*-\s*|\s+)".join(map(re.escape, parts)) + r"(?![\w-])"
        for m in re.finditer(pattern, sentence, re.IGNORECASE):
            seps = set(m.groups())
            if seps != {"-"} and not all(s.strip() == "" for s in seps):
                found.append((m.group(0), "-".join(parts)))
    return found


def _miscased(sentence: str, spellings: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Names of the source written in `sentence` in a case the source never uses
    ("Gpu" for "GPU", "Lora" for "LoRA"): (as written, the source's spelling)."""
    found = []
    text = without_tags_and_links(sentence)
    for m in _NAME.finditer(text):
        word = m.group(0)
        base = word[:-1] if word.endswith("s") and word[:-1].lower() in spellings else word
        known = spellings.get(base.lower())
        if not known or base in known:
            continue
        if base in (base.lower(), base.capitalize()) and is_common(base.lower(), ACRONYM_WORD_ZIPF):
            continue  # "it", "It" beside the context's "IT": an English word
        found.append((word, sorted(known)[0]))
    return found


@lru_cache(maxsize=16)
def _capitalised_names(source: str) -> dict[str, str]:
    """Names of `source` that are capitalised words, not acronyms ("Toolformer",
    "Chinchilla"): lower case -> the source's spelling. A word counts when the source
    writes it at least twice, always with its capital, and it is rare in English
    (`NAME_WORD_ZIPF`): a sentence-initial "Training" is not a name."""
    seen: dict[str, list[str]] = {}
    for name in _NAME.findall(source):
        seen.setdefault(name.lower(), []).append(name)
    return {
        lower: spellings[0]
        for lower, spellings in seen.items()
        if len(spellings) >= 2
        and all(w[:1].isupper() and w[1:].islower() for w in spellings)
        and lower.isalpha()
        and not is_common(lower, NAME_WORD_ZIPF)
    }


def _lowered(sentence: str, names: dict[str, str]) -> list[tuple[str, str]]:
    """Capitalised names of the source written in lower case in `sentence`, the first
    word too ("toolformer decides ..."): (as written, the source's spelling)."""
    text = without_tags_and_links(sentence)
    return [(m.group(0), names[m.group(0)]) for m in _NAME.finditer(text) if m.group(0) in names]


def _bracket_issues(sentence: str) -> list[str]:
    """Unbalanced or empty brackets in `sentence`."""
    issues, depth = [], 0
    for c in sentence:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            issues.append("a ')' without its '('")
            depth = 0
    if depth > 0:
        issues.append("a '(' without its ')'")
    if re.search(r"\(\s*\)", sentence):
        issues.append("empty brackets '()'")
    return issues


def mangled_terms(sentence: str, *, title: str, context: str) -> list[str]:
    """The mangled terms of one sentence, each an issue quoting it: a hyphenated term of
    the title or context written with mixed separators, a name or acronym of the
    source in a case the source never uses (a capitalised name in lower case, even as
    the sentence's first word), unbalanced or empty brackets. A term the
    source hyphenates may be written with spaces only ("chain of thought"): both are
    English; mixing the two is not."""
    if is_hashtag_line(sentence):
        return []
    source = plain(f"{title}\n{context}")
    text = plain(sentence)
    issues = [
        f"mangled term: '{written}' in \"{sentence}\"; the context writes '{expected}'"
        for written, expected in _mixed_separators(text, _hyphenated_terms(source))
        + _miscased(text, _spellings(source))
        + _lowered(text, _capitalised_names(source))
    ]
    issues += [f'mangled term: {what} in "{sentence}"' for what in _bracket_issues(text)]
    return issues
