"""Claim-level grounding of a post: every factual sentence must rest on the user's source.

Deterministic and model-independent. The post is split into sentences (pysbd, a
rule-based splitter; each line, bullet and the hashtag line is its own unit), and each
sentence's claims are checked against the user's title and context only:

- NUMBER / UNIT: a number and its unit (`agents.checks.claims`);
- DATE: years, month dates and relative dates (`agents.checks.claims`);
- ENTITY: organisations, venues, people, datasets, model names (`agents.checks.entities`);
- ATTRIBUTION: who the post credits with the work ("by OpenAI", "researchers at X");
- COMPARISON: comparatives and superlatives ("state-of-the-art", "outperforms", "first",
  "faster than") whose idea the context does not express.

Besides grounding, three StyleChecker rules of the reader's voice: a post is shared by a
reader, not the authors (`author_voice_issues`: "we propose", "In this paper, we
explore", "our ability"), its hook states the paper's key idea, not a filler opener
(`filler_hook`), and it names its subject instead of opening with a pronoun that refers
to nothing before it (`pronoun_hook`: "Their model achieves ...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pysbd

from agents.checks.claims import date_issues, number_issue, plain, quantities
from agents.checks.entities import SourceIndex, attributions, phrases
from agents.checks.rules import without_hashtags

#: Kinds of unsupported claim, in the order a sentence is checked.
KINDS = ("DATE", "NUMBER", "UNIT", "ATTRIBUTION", "ENTITY", "COMPARISON")
_BULLET = re.compile(r"^\s*(?:[\u2022\u25aa\u25ba\u2192\u2705\u2714\ufe0f*-]+|\d{1,2}[.)])\s+")
_HASHTAG_LINE = re.compile(r"^(?:#\w+[\s,]*)+$")
_URL = re.compile(r"https?://\S+|www\.\S+")
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
    for url in (u.rstrip(".,)") for u in _URL.findall(text)):
        if url not in source:
            claims.append(("ENTITY", f"the link '{url}' is not in the context"))
    text = _URL.sub(" ", text)
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


#: First-person phrases of the paper's authors (not of a reader sharing the paper).
AUTHOR_VOICE = re.compile(
    r"\b(?:we|we've|we're)\s+(?:are\s+|were\s+)?(?:pleased|excited|proud|happy|thrilled|"
    r"delighted|honou?red)\b"
    r"|\bwe\s+(?:(?:also|then|further|first|now|here|additionally|instead)\s+)?(?:propose|"
    r"present|introduce|release|developed|develop|designed|built|trained|show that|"
    r"demonstrate|evaluate|achieve|report|find that|found that|open-source|contribute|"
    r"explore|investigate|examine|study|studied|analy[sz]e|describe|discuss|focus|aim|seek|"
    r"argue|observe|obtain|compare|conduct|perform|provide|offer|extend|leverage|"
    r"empirically|theoretically)\w*"
    r"|\b(?:in|with|through)\s+this\s+(?:paper|work|study|article|report|preprint|"
    r"thesis|project|research),?\s+we\b"
    r"|\bhere,?\s+we\b"
    r"|\bour\s+(?:new\s+|latest\s+|recent\s+|proposed\s+|novel\s+|key\s+|main\s+|"
    r"empirical\s+|theoretical\s+)*(?:paper|work|team|model|method|"
    r"approach|results|research|lab|group|framework|system|experiments|findings|"
    r"contributions?|study|article|preprint|submission|proposed|co-?authors|ability|"
    r"abilities|capacity|analysis|evaluation|benchmark|dataset|code|implementation|"
    r"technique|algorithm|architecture|proposal|hypothesis|solution)\b"
    r"|\bmy\s+(?:co-?authors|team|paper|lab|group|collaborators)\b"
    r"|\bI\s*(?:am|'m)\s+\w+\s+to\s+(?:share|announce|present)\s+our\b",
    re.IGNORECASE,
)
#: Openers that delay the point: the hook must state the key idea or result instead.
FILLER_OPENERS = re.compile(
    r"^\W*(?:new paper(?: alert)?(?: worth your time)?|exciting news|big news|"
    r"(?:i'?m|i am|we'?re|we are)\s+(?:so\s+)?(?:excited|thrilled|happy|pleased|proud)\b|"
    r"check (?:out )?(?:this|the)\b|check this out|in today'?s post|have you ever wondered|"
    r"ever wondered|did you know|let'?s (?:talk|dive)|here'?s a (?:paper|must-read)|"
    r"must[- ]read|hot off the press|today (?:i|we) (?:want|will|look)|just read|"
    r"i (?:just )?(?:read|came across|stumbled)|a (?:great|cool|fascinating|interesting) "
    r"paper|(?:this|a) paper (?:is )?worth)",
    re.IGNORECASE,
)


def author_voice_issues(post: str) -> list[str]:
    """First-person author claims in `post` ("we propose", "our paper", "I'm excited to
    share our"): one issue per sentence, naming it. A reader's first person ("I found
    this paper interesting", "What do you think?") is fine. Rule: a reader shares the post,
    so it speaks of the authors in the third person.
    """
    issues = []
    for sentence in split_sentences(post):
        m = AUTHOR_VOICE.search(plain(sentence))
        if m and not is_hashtag_line(sentence):
            issues.append(
                f"author voice: '{sentence}' speaks as the paper's authors ('{m.group(0)}'); "
                "a reader shares this post, so write in the third person ('the authors ...')"
            )
    return issues


def filler_hook(hook: str) -> str | None:
    """An issue when `hook` (the first line, before LinkedIn's "see more" fold) opens with
    filler ("New paper worth your time", "Exciting news!", "Have you ever wondered")
    instead of the paper's key idea or result; None otherwise. Rule: the hook is all a
    reader sees before the fold, so it carries the point."""
    m = FILLER_OPENERS.search(plain(hook).strip())
    if not m:
        return None
    return (
        f"the hook opens with filler ('{m.group(0).strip()}'): '{hook.strip()}'; "
        "state the paper's key idea or result before the 'see more' fold"
    )


#: A hook that opens with one of these refers to something the reader has not seen:
#: the hook is the first thing of the post ("Their model achieves ...", "It shows ...").
_DANGLING_PRONOUN = re.compile(
    r"^\W*(it|its|they|their|theirs|them|he|she|his|her|these|those|this|that)\b(?!-)",
    re.IGNORECASE,
)
#: What may follow "this"/"that"/"these"/"those" in a hook: the paper being shared.
_SHARED_THING = re.compile(
    r"^\s+(?:new\s+|recent\s+|short\s+|one\s+)?(?:paper|preprint|work|study|article|"
    r"post|week|year|month)\b",
    re.IGNORECASE,
)
#: "It" with nothing to refer to, as English uses it: "It is rare to ...", "It turns out".
_DUMMY_IT = re.compile(
    r"^(?:\s+(?:turns out|seems|appears)\b|(?:\s+is|\s+was|'s)\s+(?:\w+\s+){1,2}"
    r"(?:to|that|how|when|why)\b)",
    re.IGNORECASE,
)


def pronoun_hook(hook: str) -> str | None:
    """An issue when the post's first sentence `hook` opens with a pronoun that refers
    to nothing before it ("Their model achieves ...", "It shows ...", "These results
    ..."), None otherwise. "This paper ..." (the paper being shared) and the dummy "it"
    ("It turns out ...", "It is rare to ...") are fine. Rule: the hook is read first,
    so it must name its subject."""
    text = plain(hook).strip()
    m = _DANGLING_PRONOUN.match(text)
    if not m:
        return None
    word, rest = m.group(1).lower(), text[m.end() :]
    if word in ("this", "that", "these", "those") and _SHARED_THING.match(rest):
        return None
    if word == "it" and _DUMMY_IT.match(rest):
        return None
    return (
        f"pronoun hook: '{hook.strip()}' opens with '{m.group(1)}', which refers to "
        "nothing before it; name the paper or its method first"
    )
