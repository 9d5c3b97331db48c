"""GraphQL inputs. Each converts itself to the validated domain request with
`to_request()`; the fields' limits live once, on `db.models.PostRequestBase`. Text is
normalised first (`clean_text`), so the limits count what a reader sees."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Any, TypeVar

import strawberry
from pydantic import BaseModel, ValidationError
from strawberry.utils.str_converters import to_camel_case

from db.models import (
    AUDIENCE_MAX,
    AUDIENCE_MIN,
    CONTEXT_MAX,
    HASHTAGS_MAX,
    HASHTAGS_MIN,
    POST_MAX,
    POST_MIN,
    TITLE_MAX,
    TITLE_MIN,
    URL_MAX,
    PostRequest,
    VerifyRequest,
)
from graph.api.types import OrchestrationMode, ReviewMode, Tone
from graph.errors import UserInputError

RequestT = TypeVar("RequestT", bound=BaseModel)

#: Terminal escape sequences (ECMA-48): CSI (`ESC [ ... final byte`: colours, cursor
#: moves), OSC (`ESC ] ... BEL` or `ESC \\`: window titles, hyperlinks) and the two-byte
#: escapes. An unterminated one loses only its ESC (a control character).
_TERMINAL_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])"
)
#: Joiners that shape the text around them (emoji sequences, Persian and Indic words):
#: kept between two characters that show, dropped anywhere else.
_JOINERS = frozenset({"\u200c", "\u200d"})
#: Emoji tag characters (U+E0020-E007F): kept only in a subdivision flag after U+1F3F4.
_TAGS = range(0xE0020, 0xE0080)
_BLACK_FLAG = "\U0001f3f4"
#: Controls that break a line (what `str.splitlines` breaks at besides \n and \r): a
#: vertical tab, a form feed (pdftotext's page break, in pasted abstracts), the
#: information separators and NEL. Each becomes \n, so the words either side stay apart.
_LINE_BREAKS = frozenset("\x0b\x0c\x1c\x1d\x1e\x85")
#: Format characters that show: the prepended concatenation marks (the Arabic number
#: and year signs, the end of ayah, Syriac's abbreviation mark, Kaithi's number signs),
#: which are written before the digits they span.
_VISIBLE_FORMATS = frozenset(
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd"
)
#: Unicode general categories of characters that do not show: controls, formats,
#: surrogates, separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
#: The fields written on one line; the others keep their line breaks and tabs.
SINGLE_LINE = frozenset({"paper_title", "target_audience"})


def _shows(char: str) -> bool:
    """Whether `char` takes part in what is seen (a combining mark does, with its base)."""
    if char in _VISIBLE_FORMATS:
        return True
    return not char.isspace() and unicodedata.category(char) not in _HIDDEN


def clean_text(text: str, *, single_line: bool = False) -> str:
    """`text` as it reads, before any length check: terminal escape sequences removed,
    NFC, line breaks as `\\n` (a form feed, vertical tab, NEL or U+2028/2029 too, so the
    words either side stay apart), and every control and format character dropped
    (zero-width spaces, the byte order mark, soft hyphens, bidirectional embeddings,
    overrides, isolates and marks, tag characters that smuggle hidden text to the
    model), except `\\n`, `\\t`, the joiners between two characters that show, the tags
    of a flag and the format characters that show (`_VISIBLE_FORMATS`: the Arabic number
    sign); with `single_line`, every run of white space is one space. A text in which
    nothing shows but combining marks becomes "" (a title of five zero-width spaces is
    empty, not 5 characters long). The categories are Unicode's (`unicodedata`)."""
    text = _TERMINAL_ESCAPE.sub("", text)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept: list[str] = []
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Zl", "Zp") or char in _LINE_BREAKS:
            kept.append("\n")
        elif char in _VISIBLE_FORMATS:
            kept.append(char)
        elif char in _JOINERS:
            after = text[index + 1 : index + 2]
            if kept and _shows(kept[-1]) and after and _shows(after):
                kept.append(char)
        elif ord(char) in _TAGS:
            if kept and (kept[-1] == _BLACK_FLAG or ord(kept[-1]) in _TAGS):
                kept.append(char)
        elif category in ("Cc", "Cf", "Cs"):
            if char in "\n\t":
                kept.append(char)
        else:
            kept.append(char)
    result = "".join(kept)
    if single_line:
        result = " ".join(result.split())
    seen = any(_shows(char) and not unicodedata.category(char).startswith("M") for char in result)
    return result if seen else ""


def cleaned(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every string value normalised (`clean_text`; the `SINGLE_LINE`
    fields on one line)."""
    return {
        name: clean_text(value, single_line=name in SINGLE_LINE)
        if isinstance(value, str)
        else value
        for name, value in fields.items()
    }


def validated(model: type[RequestT], data: dict[str, Any]) -> RequestT:
    """`model.model_validate(data)`, or `UserInputError` (BAD_USER_INPUT) whose
    `extensions.field` names the first bad input field (camelCase) and
    `extensions.fields` maps every bad field to its message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors():
            name = to_camel_case(str(error["loc"][0])) if error["loc"] else "input"
            fields.setdefault(name, f"{name}: {error['msg']}")
        field = next(iter(fields))
        raise UserInputError(fields[field], field=field, fields=fields) from None


@strawberry.input
class _Content:
    content: str = strawberry.field(description=f"the post, {POST_MIN}-{POST_MAX} characters")


@strawberry.input
class _Paper:
    paper_title: str = strawberry.field(description=f"{TITLE_MIN}-{TITLE_MAX} characters")
    additional_context: str = strawberry.field(
        default="", description=f"abstract, results, notes; at most {CONTEXT_MAX} characters"
    )
    target_audience: str = strawberry.field(
        default="professional", description=f"{AUDIENCE_MIN}-{AUDIENCE_MAX} chars"
    )
    tone: Tone = Tone.PROFESSIONAL

    def _fields(self) -> dict[str, Any]:
        """The input's fields by name, their text normalised (`cleaned`)."""
        return cleaned({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]


@strawberry.input(description="What to write about, and how.")
class GeneratePostInput(_Paper):
    paper_title: str = strawberry.field(
        description=f"the paper's title, or its arXiv id or link (1706.03762, "
        f"arXiv:1706.03762v7, https://arxiv.org/abs/1706.03762): research then fetches its "
        f"record; {TITLE_MIN}-{TITLE_MAX} characters"
    )
    include_technical_details: bool = True
    max_hashtags: int = strawberry.field(default=10, description=f"{HASHTAGS_MIN}-{HASHTAGS_MAX}")
    review: ReviewMode = strawberry.field(
        default=ReviewMode.NEVER,
        description="ALWAYS / ON_REJECTION: the task waits AWAITING_REVIEW for reviewTask "
        "before it completes; NEVER (default): it completes on its own",
    )
    orchestration_mode: OrchestrationMode = strawberry.field(
        default=OrchestrationMode.SEQUENTIAL,
        description="PARALLEL runs the two verifiers at once",
    )
    callback_url: str | None = strawberry.field(
        default=None,
        description="an http(s) URL told when the task awaits review or ends (a signed "
        "Standard Webhooks POST, as registerWebhook's; verify it with the task's "
        f"callbackSecret); public unless the server allows private addresses; at most "
        f"{URL_MAX} characters",
    )

    def to_request(self) -> PostRequest:
        """The validated request; raises `UserInputError` naming each bad field."""
        return validated(PostRequest, self._fields())


@strawberry.input(description="A post to check with the Verification team alone.")
class VerifyPostInput(_Content, _Paper):
    max_hashtags: int = strawberry.field(default=10, description=f"{HASHTAGS_MIN}-{HASHTAGS_MAX}")

    def to_request(self) -> VerifyRequest:
        """The validated request; raises `UserInputError` naming each bad field."""
        return validated(VerifyRequest, self._fields())
