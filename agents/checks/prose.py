"""How a post reads: the StyleChecker's sentence checks, deterministic.

- **Length** (`word_count`, `long_sentence_issue`): a sentence of more than
  `MAX_SENTENCE_WORDS` words is a run-on.
- **Repetition** (`repetitions`): a sentence said twice, or a phrase of
  `REPEATED_PHRASE_WORDS` or more words said twice anywhere in the post.
- **A stock question** (`stock_question`): a closing question that could end a post on
  any paper (soft: it lowers the score, never blocks approval).

The StyleChecker's other sentence check, mangled terms, is `agents.checks.terms`'s.

Sentences are the units of `agents.checks.sentences.split_sentences`, so every issue quotes a
sentence exactly as the other checks and the writer see it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from agents.checks.claims import plain
from agents.checks.sentences import is_hashtag_line, split_sentences, without_tags_and_links
from agents.checks.support import content_words, support_index

#: A word of a phrase (`_tokens`), with its inner apostrophes and hyphens.
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
#: A word as a reader counts it (`word_count`): a white-space token with a letter or digit.
_COUNTED = re.compile(r"\S*[A-Za-z0-9]\S*")
_CLAUSE_BREAK = re.compile(r"[|,;:()\[\]\"!?]|\s-\s|\.(?:\s|$)")

#: The longest sentence, in words. Plain-language guides (GOV.UK's "25 words or
#: fewer", the Oxford Guide to Plain English's 15-20 average) and LinkedIn's own
#: advice agree on about 25; the run-ons small models wrote had 80-120. Counted by
#: `word_count`: a quoted paper title is one word (a name), so quoting it costs a
#: sentence nothing.
MAX_SENTENCE_WORDS = 25
#: A phrase of this many words said twice is a repetition, when at least
#: `REPEAT_MIN_CONTENT` of them are not `REPEAT_STOP_WORDS` ("at the end of the" is
#: English, not a repetition).
REPEATED_PHRASE_WORDS = 5
REPEAT_MIN_CONTENT = 2
#: Two sentences at least this similar (difflib ratio of their words, 0..1) are the
#: same sentence said twice ("... this technique ..." / "... this technology ...");
#: the writer's de-duplication (`agents.checks.compose`) uses the same figure.
NEAR_REPEAT_RATIO = 0.85
#: Words that do not make a phrase distinctive.
REPEAT_STOP_WORDS = frozenset(
    "a an the and or but of to in on at by for from with as is are was were be been it its "
    "this that these those their they them there here which who what how than then so "
    "not no can could would should will may might has have had do does did into over "
    "more most less also just only very such each every all any one two".split()
)


# --- length --------------------------------------------------------------------------


def _without_title(sentence: str, title: str) -> str:
    """`sentence` with each quoted or bare occurrence of the paper's `title` (and of its
    parts around a colon, three words or more) replaced by one placeholder word."""
    text = plain(sentence)
    for part in _title_forms(title):
        text = re.sub(rf'"?{re.escape(part)}"?', " TITLE ", text, flags=re.IGNORECASE)
    return text


def _title_forms(title: str) -> list[str]:
    """The title and its colon-separated parts of 3+ words, longest first."""
    title = plain(title).strip()
    forms = [title] + [p.strip() for p in title.split(":") if len(p.split()) >= 3]
    return sorted({f for f in forms if f}, key=len, reverse=True)


def word_count(sentence: str, *, title: str = "") -> int:
    """Words in `sentence` as a reader counts them: white-space separated tokens with a
    letter or digit ("GPT-3", "10,000x", "(HBM)", "e.g." are one word each; a lone
    dash is none); hashtags and links are not counted, and a quoted `title` is one."""
    text = without_tags_and_links(_without_title(sentence, title) if title else sentence)
    return len(_COUNTED.findall(text))


def long_sentence_issue(sentence: str, *, title: str = "") -> str | None:
    """The issue for a sentence over `MAX_SENTENCE_WORDS` words, quoting it; None when
    it is short enough (a hashtag line is never long)."""
    if is_hashtag_line(sentence):
        return None
    n = word_count(sentence, title=title)
    if n <= MAX_SENTENCE_WORDS:
        return None
    return (
        f'long sentence: "{sentence}" has {n} words; at most {MAX_SENTENCE_WORDS} '
        "(split it: one idea per sentence)"
    )


# --- repetition -------------------------------------------------------------------------


@dataclass(frozen=True)
class Repetition:
    """A sentence that says again what the post has said: `sentence` (the later one,
    verbatim), `phrase` (the words repeated) and whether the whole sentence repeats."""

    sentence: str
    phrase: str
    whole: bool

    @property
    def issue(self) -> str:
        """The StyleChecker's issue, quoting the sentence."""
        if self.whole:
            return f'repeated sentence: "{self.sentence}" says again what an earlier one says'
        return f'repeated phrase: "{self.phrase}" appears again in "{self.sentence}"'


def _tokens(sentence: str, title: str) -> list[list[str]]:
    """`sentence` as runs of normalised words (lower case, a hyphen read as a space:
    "real-world" = "real world", apostrophes dropped), broken at clause punctuation
    (`_CLAUSE_BREAK`: a phrase does not run across an appositive's comma), the paper's
    title, hashtags and links (a name quoted twice is not a repeated phrase)."""
    text = without_tags_and_links(plain(sentence), gap=" | ")
    if title:
        text = _without_title(text, title).replace(" TITLE ", " | ")
    runs = []
    for chunk in _CLAUSE_BREAK.split(text):
        words = [p for w in _WORD.findall(chunk) for p in w.lower().replace("'", "").split("-")]
        if words:
            runs.append(words)
    return runs


def _grams(runs: list[list[str]]) -> list[tuple[int, tuple[str, ...]]]:
    """The distinctive `REPEATED_PHRASE_WORDS`-word phrases of `runs`, with their
    position (run index * 1000 + word index)."""
    n, out = REPEATED_PHRASE_WORDS, []
    for r, words in enumerate(runs):
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            if sum(w not in REPEAT_STOP_WORDS for w in gram) >= REPEAT_MIN_CONTENT:
                out.append((r * 1000 + i, gram))
    return out


@lru_cache(maxsize=4096)
def _key(sentence: str, title: str) -> str:
    return " ".join(w for run in _tokens(sentence, title) for w in run)


def _alike(a: str, b: str) -> bool:
    """difflib ratio of `a` and `b` at least `NEAR_REPEAT_RATIO` (its cheap upper
    bounds first)."""
    m = difflib.SequenceMatcher(None, a, b)
    r = NEAR_REPEAT_RATIO
    return m.real_quick_ratio() >= r and m.quick_ratio() >= r and m.ratio() >= r


def _repeated_phrase(
    sentence: str, earlier: set[tuple[str, ...]], *, title: str
) -> tuple[str, ...] | None:
    """The longest run of words of `sentence` made of phrases in `earlier` or said
    earlier in the sentence itself; None when there is none."""
    grams = _grams(_tokens(sentence, title))
    seen: dict[tuple[str, ...], int] = {}
    hits: list[int] = []
    for k, (pos, gram) in enumerate(grams):
        first = seen.setdefault(gram, pos)
        if gram in earlier or pos - first >= REPEATED_PHRASE_WORDS:
            hits.append(k)
    if not hits:
        return None
    best: tuple[str, ...] = ()
    start = prev = hits[0]
    for k in [*hits[1:], None]:
        if k is not None and k == prev + 1 and grams[k][0] == grams[prev][0] + 1:
            prev = k
            continue
        span = grams[start][1] + tuple(g[1][-1] for g in grams[start + 1 : prev + 1])
        best = max(best, span, key=len)
        if k is not None:
            start = prev = k
    return best


def repeats(sentence: str, others: Sequence[str], *, title: str = "") -> Repetition | None:
    """How `sentence` repeats `others` (the post's other sentences) or itself: the whole
    sentence (equal words, or difflib ratio `NEAR_REPEAT_RATIO` or more), or a phrase of
    `REPEATED_PHRASE_WORDS`+ distinctive words; None when it says something new."""
    key = _key(sentence, title)
    if not key or is_hashtag_line(sentence):
        return None
    for other in others:
        other_key = _key(other, title)
        if other_key == key or (
            len(key.split()) >= REPEATED_PHRASE_WORDS and _alike(key, other_key)
        ):
            return Repetition(sentence, key, whole=True)
    earlier = {g for other in others for _, g in _grams(_tokens(other, title))}
    phrase = _repeated_phrase(sentence, earlier, title=title)
    return Repetition(sentence, " ".join(phrase), whole=False) if phrase else None


def repetitions(post: str, *, title: str = "") -> list[Repetition]:
    """Every sentence of `post` that repeats an earlier one or a phrase said before it
    (`repeats`), in post order; the first occurrence is never reported. Hashtags,
    links and the paper's title do not count."""
    found, before = [], []
    for sentence in split_sentences(post):
        if is_hashtag_line(sentence):
            continue
        rep = repeats(sentence, before, title=title)
        if rep:
            found.append(rep)
        before.append(sentence)
    return found


# --- the closing question ----------------------------------------------------------------


def stock_question(post: str, *, title: str, context: str) -> str | None:
    """A soft issue when the post's last question names nothing of this paper (no
    content word of the title or context once the quoted title is taken out: "What do
    you think?", "How could the ideas in "<title>" change your own work?"); None when
    it asks about the paper, or there is no question."""
    questions = [s for s in split_sentences(post) if s.rstrip().endswith("?")]
    if not questions:
        return None
    question = questions[-1]
    words = content_words(_without_title(question, title).replace(" TITLE ", " "))
    index = support_index(title, context)
    if any(index.has(w) for w in words):
        return None
    return (
        f'stock question: "{question}" could end a post on any paper; '
        "ask about this paper's idea or result"
    )
