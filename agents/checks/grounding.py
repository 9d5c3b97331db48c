"""Claim-level grounding of a post: every factual sentence must rest on the user's source.

Deterministic and model-independent. The post is split into sentences
(`agents.checks.sentences`), and each sentence's claims are checked against the user's
title and context only:

- NUMBER / UNIT: a number and its unit (`agents.checks.claims`);
- DATE: years, month dates and relative dates (`agents.checks.claims`);
- ENTITY: organisations, venues, people, datasets, model names (`agents.checks.entities`);
- ATTRIBUTION: who the post credits with the work ("by OpenAI", "researchers at X");
- COMPARISON: comparatives and superlatives ("state-of-the-art", "outperforms", "first",
  "faster than") whose idea the context does not express.

The splitter is `agents.checks.sentences`'s; the reader's-voice rules are
`agents.checks.voice`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from agents.checks.claims import date_issues, number_issue, plain, quantities
from agents.checks.entities import SourceIndex, attributions, phrases
from agents.checks.rules import without_hashtags
from agents.checks.sentences import URL, is_hashtag_line, split_sentences

#: Kinds of unsupported claim, in the order a sentence is checked.
KINDS = ("DATE", "NUMBER", "UNIT", "ATTRIBUTION", "ENTITY", "COMPARISON")
#: A heading: a few capitalised words alone on a line or before ':' ("Why It Matters").
_HEADING = re.compile(
    r"(?:[A-Z][\w'-]*\s+|(?:of|for|and|the|to|in|on|a|an)\s+){0,7}[A-Z][\w'-]*(?::|$)"
)
#: Comparative and superlative claims: (label, pattern in the post, pattern the context
#: must contain for the same idea). Case-insensitive.
_SOTA = r"state[- ]of[- ]the[- ]art|\bsota\b"
_BETTER = r"outperform|\bbeat|surpass|better|superior|exceed|improv|higher|stronger|" + _SOTA
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("state-of-the-art", _SOTA + r"|new record|record-breaking", _SOTA + r"|record|\bbest\b"),
    ("best", r"(?<!at )\bbest\b(?! (?:practices?|part|of all)\b)", r"\bbest\b|" + _SOTA),
    (
        "outperforms",
        r"\b(?:outperform\w*|beat(?:s|ing)?|surpass\w*|superior to|ahead of)\b",
        _BETTER,
    ),
    (
        "first",
        r"\b(?:the|is|was|were|are)\s+first\b(?!\s+(?:layer|step|stage|phase|part|half|"
        r"author|few|of the|two|three|\w+ (?:layer|step)s?\b))|\bfirst[- ]ever\b|"
        r"\bfor the first time\b",
        r"\bfirst\b",
    ),
    ("largest", r"\b(?:largest|biggest)\b", r"\b(?:largest|biggest)\b"),
    ("fastest", r"\b(?:fastest|quickest)\b", r"\bfastest\b"),
    ("smallest", r"\bsmallest\b", r"\bsmallest\b"),
    ("cheapest", r"\bcheapest\b", r"\bcheapest\b"),
    (
        "most",
        r"\bmost (?:accurate|efficient|powerful|capable|advanced|effective|robust|"
        r"popular|cited|influential|widely used)\b",
        r"\bmost\b",
    ),
)
_COMPARATIVE = re.compile(r"\b([a-z]+er|more [a-z]+|less [a-z]+|fewer [a-z]+)\s+than\b", re.I)
#: What the context may say for the same comparative idea ("faster" <- "speedup").
_COMPARATIVE_FAMILY = {
    "fast": "fast|speed|throughput|quick",
    "quick": "fast|speed|quick",
    "cheap": "cheap|cost|memory|reduc",
    "small": "small|fewer|less|reduc|compress",
    "less": "less|fewer|reduc|lower|small|cut|sav",
    "fewer": "less|fewer|reduc|lower|cut",
    "bett": _BETTER,
    "larg": "larg|more|bigger|scal",
    "bigg": "larg|bigg",
}
_NOT_COMPARATIVE = frozenset({"other", "rather", "never", "ever", "order", "under", "after"})


@dataclass(frozen=True)
class UnsupportedClaim:
    """A sentence of the post (`sentence`, verbatim) whose claim the source does not
    support: `kind` is one of `KINDS`, `reason` names the thing, e.g. "'Journal of Machine
    Learning Research' is not in the context"."""

    sentence: str
    kind: str
    reason: str


def _comparison_issues(sentence: str, source: str) -> list[str]:
    """Comparatives and superlatives of `sentence` whose idea `source` does not express."""
    issues = []
    for label, pattern, support in COMPARISONS:
        m = re.search(pattern, sentence, re.IGNORECASE)
        if m and not re.search(support, source, re.IGNORECASE):
            issues.append(f"'{m.group(0)}' ({label}) is a comparison the context does not make")
    for m in _COMPARATIVE.finditer(sentence):
        words = m.group(1).lower().split()
        if words[0] in _NOT_COMPARATIVE:
            continue
        if len(words) == 2:  # "more efficient than", "less memory than"
            support = _COMPARATIVE_FAMILY.get(words[0]) or re.escape(words[1][:5])
        else:  # "faster than" -> "fast", "better than" -> "bett"
            support = _COMPARATIVE_FAMILY.get(words[0][:-2], re.escape(words[0][:-2]))
        if not re.search(support, source, re.IGNORECASE):
            issues.append(f"'{m.group(0)}' is a comparison the context does not make")
    return issues


def _sentence_claims(sentence: str, source: str, index: SourceIndex, src_qs: list) -> list:
    """The unsupported claims of one sentence, as `(kind, reason)` pairs, deduplicated."""
    text = plain(without_hashtags(sentence))
    claims: list[tuple[str, str]] = []
    for url in (u.rstrip(".,)") for u in URL.findall(text)):
        if url not in source:
            claims.append(("ENTITY", f"the link '{url}' is not in the context"))
    text = URL.sub(" ", text)
    spans: list[tuple[int, int]] = []
    for _, reason, span in date_issues(text, source):
        claims.append(("DATE", reason))
        spans.append(span)
    for q in quantities(text):
        if any(lo <= q.start < hi for lo, hi in spans):
            continue
        issue = number_issue(text, q, source, src_qs)
        if issue:
            claims.append(issue)
    credited = set()
    for name, _ in attributions(text):
        credited.add(name)
        if not index.names(name):
            claims.append(
                ("ATTRIBUTION", f"the post credits '{name}', which the context does not name")
            )
    heading = _HEADING.match(text)
    for phrase in phrases(text):
        if heading and phrase.start < heading.end() and not phrase.strong:
            continue  # "How It Works", "The Big Picture": a heading's capitals, not names
        covered = any(phrase.text in name or name in phrase.text for name in credited)
        if not covered and not index.names(phrase.text):
            claims.append(("ENTITY", f"'{phrase.text}' is not in the context"))
    if not text.rstrip().endswith("?"):  # a question asks; it does not claim
        claims += [("COMPARISON", reason) for reason in _comparison_issues(text, source)]
    return list(dict.fromkeys(claims))


@lru_cache(maxsize=16)
def _prepared(source: str) -> tuple[SourceIndex, list]:
    """The source's entity index and quantities, built once per source: the writer and
    the verifiers check one sentence at a time against the same title and context (the
    index is read-only once built)."""
    return SourceIndex(source), quantities(source)


def check_grounding(post: str, *, title: str, context: str) -> list[UnsupportedClaim]:
    """Check each sentence of `post` against the user's `title` and `context`.

    Returns one `UnsupportedClaim` per unsupported claim, in post order (a sentence with
    two invented things appears twice); an empty list means every claim is grounded.
    Hashtags and the hashtag line are not claims.
    """
    source = plain(f"{title}\n{context}")
    index, src_qs = _prepared(source)
    claims = []
    for sentence in split_sentences(post):
        if is_hashtag_line(sentence):
            continue
        for kind, reason in _sentence_claims(sentence, source, index, src_qs):
            claims.append(UnsupportedClaim(sentence, kind, reason))
    return claims


__all__ = [
    "COMPARISONS",
    "KINDS",
    "UnsupportedClaim",
    "check_grounding",
]
