"""Numeric and date claims of a sentence, and whether the user's source supports them.

A number in a post is a claim together with its unit: "28.4 BLEU" is supported by a
context that says "28.4 BLEU", but "28.4%" is not, and "3.5 hours" is not supported by
"3.5 days". Values are normalised ("1,000" = "1000", "175B" = "175 billion", "10,000x" =
"10,000 times"); integers below `SMALL_NUMBER` without a measurement unit
are counts ("3 takeaways"), not claims. Years (1900-2099) and month names with or
without a day must appear in the source. The source is always the user's title and
context, never model-written notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Integers below this are counts and list numbers ("3 takeaways"), not claims.
SMALL_NUMBER = 10
#: Multipliers written after a number ("175B", "16K", "1.5 trillion").
_MAGNITUDES = {
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "B": 1e9,
    "T": 1e12,
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
}
#: Unit words mapped to one canonical unit: the same quantity written differently.
_UNIT_ALIASES = {
    "percent": "%",
    "per cent": "%",
    "percentage point": "%",
    "pp": "%",
    "times": "x",
    "fold": "x",
    "sec": "second",
    "s": "second",
    "min": "minute",
    "h": "hour",
    "hr": "hour",
    "gpu-hour": "hour",
    "yr": "year",
}
#: Units that make even a small integer a claim ("3x", "4-bit", "2 days", "5%").
MEASUREMENT_UNITS = frozenset(
    "% x second minute hour day week month year bit byte gb mb tb kb".split()
)
#: Words that follow a number without being its unit.
_NOT_UNITS = frozenset(
    "a an and are as at by for from in into is it of on or over than that the to was were "
    "with while which who on vs".split()
)
#: Words before a number that make it an approximation ("about 99%" for 99.3%).
APPROXIMATE = (
    "about",
    "around",
    "roughly",
    "nearly",
    "almost",
    "approximately",
    "over",
    "more than",
    "close to",
    "~",
    "some",
    "under",
    "less than",
)
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_MONTH_RE = re.compile(
    r"(?:\b(\d{1,2})(?:st|nd|rd|th)?\s+)?\b("
    + "|".join([*_MONTHS, *"Jan Feb Mar Apr Jun Jul Aug Sept? Oct Nov Dec".split()])
    + r")\b\.?(?:\s+(\d{1,2})(?:st|nd|rd|th)?\b)?(?:,?\s+((?:19|20)\d\d)\b)?"
)
_RELATIVE_DATE = re.compile(
    r"\b(yesterday|today|last (?:week|month|year)|this (?:week|month|year)|"
    r"earlier this (?:week|month|year))\b",
    re.IGNORECASE,
)
_VALUE = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)")
_AFTER = re.compile(
    r"(?P<mag>[KMBT]\b|k\b|\s(?:thousand|million|billion|trillion)\b)?"
    r"(?P<sym>\s?%|\s?x(?![A-Za-z]))?"
    r"(?:[-\s]?(?P<word>per cent|percentage points?|[A-Za-z][A-Za-z]*(?:-hours?)?))?"
)


#: Typographic characters written as their ASCII twins before any check.
_PLAIN = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": " - ",
        "\u00d7": "x",
        "\u00a0": " ",
    }
)


def plain(text: str) -> str:
    """`text` with curly quotes, en/em dashes, the multiplication sign and non-breaking
    spaces replaced by ASCII ("10,000\u00d7" -> "10,000x")."""
    return text.translate(_PLAIN)


@dataclass(frozen=True)
class Quantity:
    """A number as written (`raw`, e.g. "28.4 BLEU"), its normalised `value` (175B ->
    1.75e11), canonical `unit` ("%", "x", "day", "bleu" or ""), whether it looks like a
    `year`, and its `start`/`end` offsets in the text."""

    raw: str
    value: float
    unit: str
    year: bool
    start: int
    end: int

    @property
    def number(self) -> str:
        """The number alone as written, without thousands separators ("1,000 steps" ->
        "1000", "175B" -> "175")."""
        match = _VALUE.match(self.raw)
        assert match is not None  # `raw` starts with the number `_VALUE` found
        return match.group(1).replace(",", "")


def _unit(word: str | None) -> str:
    """Canonical unit of the word after a number: lower case, singular, aliased."""
    if not word:
        return ""
    w = word.lower()
    w = _UNIT_ALIASES.get(w, w)
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    w = _UNIT_ALIASES.get(w, w)
    return "" if w in _NOT_UNITS else w


def quantities(text: str) -> list[Quantity]:
    """Every number of `text` with its magnitude and unit, in order. Numbers that are part
    of a name ("GPT-3", "T5", "GSM8K", "K-4K") are skipped: names are entities."""
    found = []
    for m in _VALUE.finditer(text):
        start = m.start()
        if start >= 2 and text[start - 1] == "-" and text[start - 2].isalpha():
            continue
        after = _AFTER.match(text, m.end())
        mag, sym, word = after.group("mag"), after.group("sym"), after.group("word")
        if word and not (word.islower() or word.isupper()):
            word = None  # "2014 English-German": a name, not a unit
        digits = m.group(1).replace(",", "")
        value = float(digits) * _MAGNITUDES.get((mag or "").strip(), 1.0)
        unit = _unit(sym.strip() if sym else word)
        is_year = (
            not mag
            and "," not in m.group(1)
            and re.fullmatch(r"(19|20)\d\d", digits) is not None
            and unit not in MEASUREMENT_UNITS
        )
        end = max(
            m.end(),
            after.end("word") if word and unit and not sym else -1,
            after.end("sym") if sym else -1,
            after.end("mag") if mag else -1,
        )
        raw = m.group(1) if is_year else text[start:end].strip()
        found.append(Quantity(raw, value, unit, is_year, start, end))
    return found


def is_claim(q: Quantity) -> bool:
    """A number is a claim unless it is a small integer count without a measurement unit."""
    small = q.value < SMALL_NUMBER and q.value == int(q.value) and "." not in q.raw
    return not small or q.unit in MEASUREMENT_UNITS


def _same_value(a: float, b: float, approximate: bool) -> bool:
    tolerance = 0.05 * max(abs(a), abs(b)) if approximate else 1e-9 * max(abs(a), 1.0)
    return abs(a - b) <= tolerance


def _nearby_words(text: str, q: Quantity, span: int = 40) -> set[str]:
    """Canonical words within `span` characters of `q`, not crossing a sentence end."""
    before = re.split(r"[.!?;\n]\s", text[max(0, q.start - span) : q.start])[-1]
    after = re.split(r"[.!?;\n]\s", text[q.end : q.end + span])[0]
    words = f"{before} {after}".lower()
    return {_unit(w) for w in re.findall(r"[a-z][a-z-]*", words)}


def number_issue(
    sentence: str, q: Quantity, source: str, src_qs: list[Quantity]
) -> tuple[str, str] | None:
    """Why quantity `q` of `sentence` is unsupported by `source` (whose quantities are
    `src_qs`): `(kind, reason)` with kind NUMBER, UNIT or DATE; None when supported."""
    if not is_claim(q):
        return None
    before = sentence[max(0, q.start - 20) : q.start].lower()
    approx = any(word in before for word in APPROXIMATE)
    same = [s for s in src_qs if _same_value(q.value, s.value, approx)]
    units_known = {s.unit for s in src_qs if s.unit}
    if not same:
        if q.year:
            return "DATE", f"the year '{q.raw}' is not in the context"
        alike = sorted({s.raw for s in src_qs if s.unit == q.unit and q.unit and is_claim(s)})
        has = f" (it has {', '.join(alike[:3])})" if alike else ""
        return "NUMBER", f"'{q.raw}' is not in the context{has}"
    unit_like = q.unit in MEASUREMENT_UNITS or q.unit in units_known
    if not q.unit or not unit_like or any(s.unit == q.unit for s in same):
        return None
    symbol = q.unit in ("%", "x")
    if not symbol and any(q.unit in _nearby_words(source, s) for s in same):
        return None
    has = ", ".join(sorted({s.raw for s in same})[:3])
    return "UNIT", f"'{q.raw}' is not in the context (it has {has})"


def _date_key(month: str) -> str:
    return month[:3].lower()


def dates_in(text: str) -> list[tuple[str, str, str | None, int, int]]:
    """Month dates of `text`: `(raw, month key, day or None, start, end)`. "May" counts only
    next to a day or a year (otherwise it is the verb)."""
    out = []
    for m in _MONTH_RE.finditer(text):
        day, month, day_after, year = m.groups()
        if month == "May" and not (day or day_after or year):
            continue
        out.append(
            (m.group(0).strip(" ,."), _date_key(month), day or day_after, m.start(), m.end())
        )
    return out


def date_issues(sentence: str, source: str) -> list[tuple[str, str, tuple[int, int]]]:
    """Dates of `sentence` not in `source`: `(raw, reason, (start, end))`. A month must be
    named in the source, and a day with it; a relative date ("last week") must be too."""
    src = dates_in(source)
    months = {key for _, key, _, _, _ in src}
    days = {(key, day) for _, key, day, _, _ in src if day}
    issues = []
    for raw, key, day, start, end in dates_in(sentence):
        if key not in months or (day and (key, day) not in days):
            issues.append((raw, f"the date '{raw}' is not in the context", (start, end)))
    for m in _RELATIVE_DATE.finditer(sentence):
        if m.group(1).lower() not in source.lower():
            reason = f"the date '{m.group(1)}' is not in the context"
            issues.append((m.group(1), reason, m.span()))
    return issues
