"""Named entities and attributions in a sentence, and whether the user's source names them.

Without a statistical tagger (spaCy's models cannot be downloaded here), an entity is a
run of capitalised words ("Journal of Machine Learning Research", "Google Brain"), an
acronym ("WMT", "LoRA"), a CamelCase name ("ImageNet", "OpenAI") or a letters-and-digits
name ("GPT-4", "ViT-22B"). A single plain capitalised word that starts a sentence is not
an entity (English capitalises it anyway), nor are common words, month names and the
generic terms of `GENERIC_TERMS`. An entity is supported when the title or context
contains it (case-insensitive; plurals, possessives and hyphens normalised), or its
acronym or its expansion ("JMLR" <-> "Journal of Machine Learning Research").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Lower-case words that may sit inside a multi-word name ("University of Washington").
CONNECTORS = frozenset({"of", "for", "on", "de", "and", "the", "from", "in", "to", "with"})
_INNER_CONNECTORS = frozenset({"of", "for", "de"})
#: Capitalised words that are not entities: function words, post headings, months, days.
COMMON = frozenset(
    "a an the this that these those it its is are was we our my i you your he she they their "
    "what why how when where who which here there if in on at by for from with and or but so "
    "not no yes all any each every new key takeaway takeaways bottom line tl dr note update "
    "paper study results result summary highlight highlights lesson lessons insight insights "
    "conclusion question thought thoughts idea ideas today just also one two three first "
    "second third finally overall instead plus bonus read more why matters hot take step "
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
#: Terms a post may use without the context naming them (platform, field names).
GENERIC_TERMS = frozenset(
    "i ai ml nlp llm genai gpu cpu api cv rl linkedin phd ceo faq ok dl tl dr fyi imo ps".split()
)
#: Trailing words that do not change which thing is named ("Mamba model" = "Mamba").
_GENERIC_TAILS = frozenset(
    "model paper method approach framework architecture dataset benchmark team lab "
    "technique system family".split()
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9&]*(?:[-.'][A-Za-z0-9&]+)*")
_BREAK = re.compile(r"[:;!?.\"(-]")
_ATTRIBUTION = re.compile(
    r"\b(?:(?:developed|proposed|introduced|published|released|written|authored|created|"
    r"built|presented|designed|trained|led|funded|backed|open-sourced|from a team)\s+by"
    r"|(?:paper|work|study|article|research)\s+(?:by|from)"
    r"|(?:researchers|scientists|engineers|authors|team|teams|folks|group|lab)\s+(?:at|from)"
    r"|(?:comes|came)\s+from|\bby)\s+(?:the\s+)?",
    re.IGNORECASE,
)
_OWNER = re.compile(
    r"\b((?:[A-Z][\w&-]*\s+){0,3}[A-Z][\w&-]*)(?:'s)?\s+"
    r"(?:researchers|scientists|engineers|team|lab)\b"
)


@dataclass(frozen=True)
class Phrase:
    """A candidate entity: its `text`, `start`/`end` in the sentence, whether its first
    word starts the sentence (`initial`) and whether any word is acronym/CamelCase/
    alphanumeric (`strong`)."""

    text: str
    start: int
    end: int
    initial: bool
    strong: bool


def is_strong(word: str) -> bool:
    """True for "WMT", "LoRA", "ImageNet", "OpenAI", "GPT-4", "T5": not ordinary words."""
    core = re.sub(r"[']s$", "", word).rstrip("s")
    upper = sum(c.isupper() for c in core)
    has_digit = any(c.isdigit() for c in core)
    return word[0].isalpha() and (upper >= 2 or has_digit or bool(re.search(r"[a-z][A-Z]", core)))


def _norm(text: str) -> str:
    """Lower case, no possessives or punctuation, letters split from digits, singular."""
    text = re.sub(r"[']s\b", "", text)
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and w[-2] != "s" else w for w in words)


def _initials(words: list[str]) -> str:
    """Acronym of `words`: the first letter of each, all capitals of an acronym word."""
    return "".join(
        "".join(c for c in w if c.isupper()) if is_strong(w) else w[0]
        for w in words
        if w.lower() not in CONNECTORS
    ).lower()


class SourceIndex:
    """The user's title and context, prepared for entity look-ups."""

    def __init__(self, source: str) -> None:
        self.text = f" {_norm(source)} "
        self.acronyms: set[str] = set()
        self.capital_acronyms: set[str] = set()
        for chunk in re.split(r"[,;:.!?()\[\]\n\"“”]", source):
            words = re.findall(r"[A-Za-z][A-Za-z0-9]*", chunk)
            for i in range(len(words)):
                for j in range(i + 2, min(len(words), i + 8) + 1):
                    key = _initials(words[i:j])
                    self.acronyms.add(key)
                    if all(w[0].isupper() or w in CONNECTORS for w in words[i:j]):
                        self.capital_acronyms.add(key)
        self.acronym_words = {_initials([w]) for w in _TOKEN.findall(source) if is_strong(w)}

    def names(self, phrase: str) -> bool:
        """True when the source names `phrase` itself, its acronym or its expansion."""
        if f" {_norm(phrase)} " in self.text:
            return True
        words = phrase.split()
        if len(words) == 1 and is_strong(phrase) and not any(c.isdigit() for c in phrase):
            key = _initials(words)
            pool = self.capital_acronyms if len(key) <= 3 else self.acronyms
            return len(key) >= 2 and key in pool
        if (
            len(words) >= 2
            and len(_initials(words)) >= 3
            and _initials(words) in self.acronym_words
        ):
            return True
        if len(words) >= 2 and words[-1].lower().rstrip("s") in _GENERIC_TAILS:
            return self.names(" ".join(words[:-1]))
        parts = re.split(r"\s(?:of|for|de)\s", phrase)
        return len(parts) > 1 and all(self.names(part) for part in parts)


def _trim(words: list[str]) -> list[str]:
    """Drop common words and connectors from both ends of a phrase."""
    while words and (words[0].lower() in COMMON | CONNECTORS) and not is_strong(words[0]):
        words = words[1:]
    while words and (words[-1].lower() in COMMON | CONNECTORS) and not is_strong(words[-1]):
        words = words[:-1]
    return words


def _flush(run: list[re.Match[str]], initial: bool, out: list[Phrase]) -> None:
    """Close a run of capitalised words into a `Phrase` of `out`, if it names something."""
    words = _trim([re.sub(r"[']s$", "", m.group(0)) for m in run])
    if not words:
        return
    first = initial and words[0] == re.sub(r"[']s$", "", run[0].group(0))
    if first and len(words) > 1 and not is_strong(words[0]) and is_strong(words[1]):
        words, first = words[1:], False  # "Fine-tuning GPT-3", "Most LLMs": a capital by position
    strong = any(is_strong(w) for w in words)
    text = " ".join(words)
    if (len(words) == 1 and not strong and first) or _norm(text) in GENERIC_TERMS:
        return
    if re.fullmatch(r"I'(?:m|ve|d|ll)", text):
        return
    start = next(m.start() for m in run if m.group(0).startswith(words[0]))
    out.append(Phrase(text, start, start + len(text), first, strong))


def phrases(sentence: str) -> list[Phrase]:
    """The candidate entities of `sentence`, in order (see the module docstring)."""
    out: list[Phrase] = []
    run: list[re.Match[str]] = []
    run_initial, prev_end = False, 0
    for idx, m in enumerate(_TOKEN.finditer(sentence)):
        gap = sentence[prev_end : m.start()]
        word = m.group(0)
        initial = idx == 0 or bool(_BREAK.search(gap))
        capital = word[0].isupper() or is_strong(word)
        joined = bool(run) and re.fullmatch(r"[ \t]+", gap) is not None
        joined = joined and not re.search(r"[']s$", run[-1].group(0))
        if capital and not joined:
            _flush(run, run_initial, out)
            run, run_initial = [m], initial
        elif capital or (joined and word in _INNER_CONNECTORS and not is_strong(run[-1].group(0))):
            run.append(m)
        else:
            _flush(run, run_initial, out)
            run = []
        prev_end = m.end()
    _flush(run, run_initial, out)
    return out


def attributions(sentence: str) -> list[tuple[str, int]]:
    """Who `sentence` credits with the work ("developed by X", "researchers at X",
    "X's team"): `(name, start)` pairs."""
    found = []
    for m in _ATTRIBUTION.finditer(sentence):
        rest = sentence[m.end() :]
        name = _TOKEN.match(rest)
        if name and name.group(0)[0].isupper():
            run = re.match(r"[A-Z][\w&-]*(?:\s+(?:of\s+|for\s+)?[A-Z][\w&-]*)*", rest)
            found.append((re.sub(r"[']s$", "", run.group(0) if run else name.group(0)), m.end()))
    for m in _OWNER.finditer(sentence):
        words = _trim(m.group(1).split())
        if words:
            found.append((" ".join(words), m.start(1)))
    return found
