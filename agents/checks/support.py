"""How much of a sentence the user's title and context support: the TechVerifier's
content check, for sentences with no number, date or name for the claim
checks (`agents.checks.grounding`) to catch.

A sentence's **content words** are its words of 4 or more letters that are neither
function words (`FUNCTION_WORDS`) nor common English (wordfreq Zipf frequency of
`COMMON_ZIPF` or more: "make", "really", "world"), plus its names and acronyms of any
length ("GPU", "LoRA", "GPT-3"); a hyphenated word counts as its parts ("low-rank" ->
"rank"); words about the post and the paper rather than its content (`FRAMING_WORDS`:
"paper", "authors", "takeaway") are not content. A content word is **supported** when
the title or context has it, or a morphological variant of it (same simplemma lemma,
"matrices" = "matrix"; or Snowball stems of which one extends the other by a suffix,
"reduction" ~ "reduces", "curation" ~ "curated"), or, for a name, when the context
names it, its acronym or its expansion (`agents.checks.entities.SourceIndex`: "HBM" <-> "high
bandwidth memory"). A post that spells out an acronym of the context ("high bandwidth
memory (HBM)" when the context has only "HBM") has those words supported too.

The **support score** of a sentence is the share of its content words that are
supported; below `SUPPORT_THRESHOLD` the sentence says something the source does not.
Questions, headings ("Key takeaways:"), hashtag lines and sentences with fewer than
`MIN_CONTENT_WORDS` content words are not scored. Deterministic; lemmas, stems and word
frequencies ship inside the simplemma, snowballstemmer and wordfreq wheels (no network).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import simplemma
import snowballstemmer
from wordfreq import zipf_frequency

from agents.checks.claims import plain
from agents.checks.entities import GENERIC_TERMS, SourceIndex, is_strong
from agents.checks.rules import without_hashtags
from agents.checks.sentences import URL

#: A sentence is supported when more than this share (0..1) of its content words is in
#: the title or context (`Support.supported`: score >= the threshold). Tuned on the
#: development set (tests/data/posts.json) with `python -m benchmarks.quality
#: --tune-support`: at `COMMON_ZIPF` 5.5 the 193 sentences of the clean posts (14 of
#: them paraphrases in other words) score 0.625 or more, the 14 planted unsupported
#: sentences 0.60 or less (the next highest 0.43); 0.61 splits that gap. Not tuned on
#: the hand-written examples of `tests/agents/checks/test_reader_checks.py` (regression cases
#: only).
SUPPORT_THRESHOLD = 0.61
#: Words at least this frequent in English (wordfreq's Zipf scale: 6 is once per
#: thousand words, 5 once per 100,000) are common words, not content. Tuned with the
#: threshold: at 5.0 two planted unsupported sentences keep fewer than
#: `MIN_CONTENT_WORDS` content words and go unscored; at 6.0 and above, clean sentences
#: score as low as the unsupported ones (0.5: "large", "real", "world" count).
COMMON_ZIPF = 5.5
#: Sentences with fewer content words than this say too little to score
#: ("It is simple.", "Worth a read.").
MIN_CONTENT_WORDS = 2
#: Shortest Snowball stem that may match a longer one as its prefix ("reduc" ~
#: "reduct"); shorter stems match only when equal ("use" is not "user").
MIN_PREFIX_STEM = 5
#: Function words of 4+ letters that wordfreq does not always rank as common.
FUNCTION_WORDS = frozenset(
    "about above across after again against along also although among amongst around "
    "because been before behind being below beneath beside besides between beyond both "
    "could does doing down during each either else even ever every from have having "
    "hence here herself himself however into itself just least less many might more "
    "most much must near neither never nevertheless none nonetheless nothing onto other "
    "others otherwise ours over per rather same several shall should since some such "
    "than that their theirs them themselves then there thereby therefore these they this "
    "those though through throughout thus till together toward towards under unless "
    "unlike until upon very were what whatever when whenever where whereas whereby "
    "wherever whether which while whilst whom whose will with within without would your "
    "yours yourself".split()
)
#: Words about the post, the paper and its readers, not about what the paper found.
FRAMING_WORDS = frozenset(
    "paper papers preprint article study studies work works research researcher "
    "researchers author authors team teams post read reading reader readers takeaway "
    "takeaways highlight highlights idea ideas finding findings result results "
    "approach method methods technique contribution contributions linkedin worth "
    "interesting practitioners engineers project projects pipeline pipelines share "
    "sharing thoughts question questions".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['-][A-Za-z0-9]+)*")
#: Words spelled out before an acronym in brackets: "high bandwidth memory (HBM)".
_SPELLED_OUT = re.compile(r"((?:[A-Za-z][\w-]*\s+){1,6})\(([A-Z][A-Za-z0-9]*[A-Z]s?)\)")
_HEADING = re.compile(r"^[\w\s'-]{1,40}:$")


@dataclass(frozen=True)
class Support:
    """A sentence's support: `score` 0..1 (the share of `content` words supported),
    its `content` words in order, those `missing` from the source, and whether it was
    `scored` at all (questions, headings and sentences with fewer than
    `MIN_CONTENT_WORDS` content words are not: their score is 1.0)."""

    sentence: str
    score: float
    content: tuple[str, ...]
    missing: tuple[str, ...]
    scored: bool

    @property
    def supported(self) -> bool:
        """True unless the sentence was scored below `SUPPORT_THRESHOLD`."""
        return not self.scored or self.score >= SUPPORT_THRESHOLD


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The lower-case simplemma lemma of an English `word` ("matrices" -> "matrix")."""
    return simplemma.lemmatize(word, lang="en").lower()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


@lru_cache(maxsize=65536)
def is_common(word: str, zipf: float = COMMON_ZIPF) -> bool:
    """True for a lower-case `word` too frequent in English to carry content (wordfreq
    Zipf frequency `zipf` or more, of the word or of its lemma: "keeps" is as common as
    "keep") or a function word (`FUNCTION_WORDS`)."""
    if word in FUNCTION_WORDS:
        return True
    return max(zipf_frequency(word, "en"), zipf_frequency(lemma(word), "en")) >= zipf


def _parts(token: str) -> list[str]:
    """A token as the words it is counted by: a name whole ("GPT-3", "LoRA"), a
    hyphenated word as its parts ("low-rank" -> "low", "rank"), no possessive."""
    token = re.sub(r"'s$", "", token)
    if is_strong(token):
        return [token]
    return [p for p in token.split("-") if p]


def _content_form(part: str, zipf: float) -> str | None:
    """`part` (a word, `_parts`) as a content word (a name as written, another word in
    lower case), or None when it is not one."""
    if is_strong(part):
        return part if part.lower() not in GENERIC_TERMS else None
    word = part.lower()
    if len(word) >= 4 and word not in FRAMING_WORDS and not is_common(word, zipf):
        return word
    return None


def _text_of(sentence: str) -> str:
    return URL.sub(" ", without_hashtags(plain(sentence)))


def content_words(sentence: str, *, zipf: float = COMMON_ZIPF) -> list[str]:
    """The content words of `sentence`, in order (see the module docstring): names and
    acronyms as written, other words in lower case."""
    forms = (
        _content_form(part, zipf) for t in _WORD.findall(_text_of(sentence)) for part in _parts(t)
    )
    return [f for f in forms if f is not None]


def new_phrases(sentence: str, *, title: str, context: str) -> list[str]:
    """Runs of two or more adjacent content words of `sentence` none of which the title
    or context supports ("multiplicative enhancement"), as written: a concept the
    source never names. Any other word, a number or punctuation ends a run. The writer
    holds a sentence to its fact with this (`agents.teams.post_plan.beyond_fact`); the
    verifiers do not (a clean paraphrase may say "rivals or beats earlier" work)."""
    index = support_index(title, context)
    spelled = _spelled_out(sentence, index)
    runs: list[list[str]] = [[]]
    for m in re.finditer(r"[A-Za-z][A-Za-z0-9]*(?:['-][A-Za-z0-9]+)*|\S", _text_of(sentence)):
        parts = _parts(m.group(0)) if m.group(0)[0].isalpha() else [m.group(0)]
        for part in parts:
            form = _content_form(part, COMMON_ZIPF) if part[0].isalpha() else None
            if form is not None and form.lower() not in spelled and not index.has(form):
                runs[-1].append(part)
            elif runs[-1]:
                runs.append([])
    return [" ".join(run) for run in runs if len(run) >= 2]


class SupportIndex:
    """The user's title and context, prepared for support look-ups: their words, lemmas
    and stems, and their names (`SourceIndex`)."""

    def __init__(self, title: str, context: str) -> None:
        source = plain(f"{title}\n{context}")
        self.names = SourceIndex(source)
        words = {p.lower() for t in _WORD.findall(source) for p in [*_parts(t), t]}
        self.words = words | {w.split("-")[-1] for w in words}
        self.lemmas = {lemma(w) for w in self.words}
        self.stems = {_stem(w) for w in self.words}

    def has(self, word: str) -> bool:
        """True when the source has `word` or a morphological variant of it, or (for a
        name) names it, its acronym or its expansion."""
        lower = word.lower()
        if lower in self.words or lemma(lower) in self.lemmas:
            return True
        if is_strong(word):
            return self.names.names(word)
        stem = _stem(lower)
        if stem in self.stems:
            return True
        return len(stem) >= MIN_PREFIX_STEM and any(
            other.startswith(stem) or (len(other) >= MIN_PREFIX_STEM and stem.startswith(other))
            for other in self.stems
        )


@lru_cache(maxsize=16)
def support_index(title: str, context: str) -> SupportIndex:
    """The `SupportIndex` of a title and context (cached: the writer checks one sentence
    at a time against the same source)."""
    return SupportIndex(title, context)


def is_scored(sentence: str) -> bool:
    """False for what makes no claim to support: a question, a heading ("Key
    takeaways:"), a hashtag-only line."""
    text = sentence.strip()
    return bool(text) and not (
        text.endswith("?") or _HEADING.match(text) or re.fullmatch(r"(?:#\w+[\s,]*)+", text)
    )


def _spelled_out(sentence: str, index: SupportIndex) -> set[str]:
    """Words of `sentence` that spell out an acronym the source has ("high bandwidth
    memory (HBM)"): supported through the acronym."""
    found: set[str] = set()
    for m in _SPELLED_OUT.finditer(plain(sentence)):
        words, acronym = m.group(1).split(), m.group(2).rstrip("s")
        if not index.names.names(acronym):
            continue
        spelled = words[-len(acronym) :]
        if "".join(w[0] for w in spelled).lower() == acronym.lower():
            found |= {p.lower() for w in spelled for p in _parts(w)}
    return found


def sentence_support(
    sentence: str,
    *,
    title: str,
    context: str,
    zipf: float = COMMON_ZIPF,
) -> Support:
    """The `Support` of one sentence against the user's `title` and `context`.

    `zipf` is the common-word cut-off (`COMMON_ZIPF`; the tuning sweep varies it).
    """
    words = tuple(content_words(sentence, zipf=zipf))
    if not is_scored(sentence) or len(words) < MIN_CONTENT_WORDS:
        return Support(sentence, 1.0, words, (), scored=False)
    index = support_index(title, context)
    spelled = _spelled_out(sentence, index)
    missing = tuple(w for w in words if w.lower() not in spelled and not index.has(w))
    score = 1.0 - len(missing) / len(words)
    return Support(sentence, round(score, 3), words, missing, scored=True)


def support_issue(support: Support) -> str:
    """The TechVerifier's issue for an unsupported sentence, quoting it, e.g.
    `unsupported content: "...": 2 of 6 content words (33%) are in the title or
    context, 60% needed; not there: 'human', 'beings', ...`."""
    n, kept = len(support.content), len(support.content) - len(support.missing)
    missing = ", ".join(f"'{w}'" for w in dict.fromkeys(support.missing))
    return (
        f'unsupported content: "{support.sentence}": {kept} of {n} content words '
        f"({support.score:.0%}) are in the title or context, "
        f"{SUPPORT_THRESHOLD:.0%} needed; not there: {missing}"
    )
