"""Claims that turn the context around: the TechVerifier's CONTRADICTION check.

The support check (`agents.checks.support`) asks whether a sentence's words are in the source;
a sentence can keep every word and still say the opposite. Two reversals are common in
a small model's misreadings, and are the two cues of contradiction that need no parser
(negation and antonymy, the leading signals of contradiction in the NLI literature, e.g.
de Marneffe et al., "Finding Contradictions in Text", ACL 2008):

- **Negation** (`_negations`): the source says a verb's object is absent ("the
  architecture uses no attention or even MLP blocks") and the sentence puts the same
  object after the same verb without the negation ("It uses attention in recurrent
  mode"). Only the same verb counts: a negated word alone is no contradiction ("no
  inference latency" / "inference is no slower"; "without any human labels" /
  "replaces those labels").
- **Direction** (`_directions`): the source says a change goes one way ("cuts the
  GPU memory requirement by 3 times") and the sentence says the other ("triples the
  GPU memory"): a content word that the source puts only after a verb of one direction
  (`DECREASE`, `INCREASE`) and the sentence after a verb of the other, in one clause
  and before the next such verb.

Words are compared by lemma (simplemma). Deterministic; the title counts as source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from agents.checks.claims import plain
from agents.checks.support import content_words, lemma

#: Words that negate the object after them ("uses no attention").
NEGATORS = frozenset("no not never without nor".split())
#: Words after a negator that make it add, not deny: "is not only faster but also more
#: accurate" says it is faster (so "is only slightly larger" turns nothing around).
NOT_NEGATING = frozenset("only just merely simply solely".split())
#: Words between a verb (or a negator) and its object that do not change it, and that
#: join a list of objects ("no attention or even MLP blocks").
_BETWEEN = frozenset("a an the its their his her any even or and nor separate".split())
#: Verbs (and their forms, by lemma) of a change downwards and upwards. A change's
#: objects are the content words after the verb in its clause, at most `CHANGE_REACH`
#: words on.
DECREASE = frozenset(
    "cut reduce lower decrease shrink halve drop lessen save trim slash minimise minimize "
    "fewer less smaller".split()
)
INCREASE = frozenset(
    "increase raise double triple quadruple grow boost inflate expand multiply more larger".split()
)
CHANGE_REACH = 12
#: Where a clause ends: a sentence mark, a semicolon, a colon, a comma before a space, a
#: dash, or a contrast ("but", "while", "whereas").
_CLAUSE = re.compile(r"[.;:!?()]|,\s|\s[-\u2013\u2014]\s|\b(?:but|while|whereas|yet)\b", re.I)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['-][A-Za-z0-9]+)*")


@dataclass
class _Uses:
    """How a text uses its words: (verb lemma, object lemma) pairs stated (`said`) and
    negated (`denied`), and content lemmas after a verb of decrease (`down`) or
    increase (`up`); `quote` keeps the text's own words for each, for the issue."""

    said: set[tuple[str, str]] = field(default_factory=set)
    denied: set[tuple[str, str]] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    up: set[str] = field(default_factory=set)
    quote: dict[object, str] = field(default_factory=dict)


def _clauses(text: str) -> list[tuple[list[str], list[re.Match[str]]]]:
    """Each clause of `text` as its words and their matches (for quoting its text)."""
    out = []
    for clause in _CLAUSE.split(plain(text)):
        if clause and clause.strip():
            matches = list(_TOKEN.finditer(clause))
            out.append(([m.group(0) for m in matches], matches))
    return out


def _span(matches: list[re.Match[str]], i: int, j: int, content: set[str] = frozenset()) -> str:
    """The clause's text from word `i` to word `j`, numbers and all, and on through the
    `content` words right after `j` (at most two: "needs no labelled queries")."""
    for _ in range(2):
        if j + 1 < len(matches) and matches[j + 1].group(0).lower() in content:
            j += 1
    return matches[i].string[matches[i].start() : matches[j].end()]


def _objects(words: list[str], start: int) -> list[int]:
    """Indexes of the objects from `start` on: the first word not in `_BETWEEN`, and
    each one after a joining word ("attention or even MLP blocks": attention, MLP)."""
    out, i = [], start
    while i < len(words):
        while i < len(words) and words[i].lower() in _BETWEEN:
            i += 1
        if i >= len(words):
            break
        out.append(i)
        nxt = next(
            (j for j in range(i + 1, len(words)) if words[j].lower() in {"or", "and", "nor"}), None
        )
        if nxt is None or nxt > i + 3:
            break
        i = nxt
    return out


def _change(word: str) -> str | None:
    lower = word.lower()
    if lower in DECREASE or lemma(lower) in DECREASE:
        return "down"
    if lower in INCREASE or lemma(lower) in INCREASE:
        return "up"
    return None


def _uses(text: str) -> _Uses:
    uses = _Uses()
    for words, matches in _clauses(text):
        content = {w.lower() for w in content_words(" ".join(words))}
        for i, word in enumerate(words):
            lower = word.lower()
            additive = i + 1 < len(words) and words[i + 1].lower() in NOT_NEGATING
            if lower in NEGATORS and i > 0 and not additive:
                verb = lemma(words[i - 1].lower())
                for j in _objects(words, i + 1):
                    pair = (verb, lemma(words[j].lower()))
                    uses.denied.add(pair)
                    uses.quote.setdefault(("denied", pair), _span(matches, i - 1, j, content))
            elif lower not in _BETWEEN and i + 1 < len(words):
                for j in _objects(words, i + 1)[:1]:
                    if words[j].lower() not in NEGATORS:
                        pair = (lemma(lower), lemma(words[j].lower()))
                        uses.said.add(pair)
                        uses.quote.setdefault(("said", pair), _span(matches, i, j, content))
            if (way := _change(word)) is None:
                continue
            for j in range(i + 1, min(len(words), i + 1 + CHANGE_REACH)):
                if _change(words[j]) is not None:  # "lowers the size and raises recall"
                    break
                if words[j].lower() in content:
                    changed = lemma(words[j].lower())
                    getattr(uses, way).add(changed)
                    uses.quote.setdefault((way, changed), _span(matches, i, j))
    return uses


@lru_cache(maxsize=16)
def _source_uses(title: str, context: str) -> _Uses:
    return _uses(f"{title}\n{context}")


def _negations(sentence: str, source: _Uses, mine: _Uses) -> list[str]:
    """Objects `sentence` puts after a verb that the source puts after the same verb
    only negated, each an issue quoting both: `contradiction: "It uses attention ...":
    it says 'uses attention', but the context says 'uses no attention'`."""
    return [
        f"contradiction: \"{sentence}\" says '{mine.quote[('said', pair)]}', but the "
        f"context says '{source.quote[('denied', pair)]}'"
        for pair in sorted(mine.said & source.denied - source.said)
    ]


def _directions(sentence: str, source: _Uses, mine: _Uses) -> list[str]:
    """Changes `sentence` turns around (the source only cuts a content word, the
    sentence raises it, or the other way), one issue per change the sentence states
    ("doubles the index size": one, not one for "index" and one for "size"), quoting
    both."""
    turned: list[tuple[str, str]] = []
    for way, other in (("up", "down"), ("down", "up")):
        mine_way, source_other = getattr(mine, way), getattr(source, other)
        for changed in mine_way & source_other - getattr(source, way):
            turned.append((mine.quote[(way, changed)], source.quote[(other, changed)]))
    kept: list[tuple[str, str]] = []
    for said, says in sorted(turned, key=lambda t: -len(t[0])):
        if not any(k.startswith(said) for k, _ in kept):  # a shorter quote of one change
            kept.append((said, says))
    return [
        f"contradiction: \"{sentence}\" says '{said}', but the context says '{says}'"
        for said, says in sorted(kept, key=lambda t: sentence.find(t[0]))
    ]


def contradictions(sentence: str, *, title: str, context: str) -> list[str]:
    """Every reversal of the source in `sentence` (negations, then directions: see the
    module); empty when it turns nothing around."""
    source, mine = _source_uses(title, context), _uses(sentence)
    return [*_negations(sentence, source, mine), *_directions(sentence, source, mine)]
