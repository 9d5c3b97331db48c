"""GraphQL inputs. Each converts itself to the validated domain request with
`to_request()`; the fields' limits live once, on `db.models.PostRequestBase`."""

from __future__ import annotations

import dataclasses
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
    PostRequest,
    VerifyRequest,
)
from graph.errors import UserInputError
from graph.types import Tone

RequestT = TypeVar("RequestT", bound=BaseModel)


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
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@strawberry.input(description="What to write about, and how.")
class GeneratePostInput(_Paper):
    paper_title: str = strawberry.field(
        description=f"the paper's title, or its arXiv id or link (1706.03762, "
        f"arXiv:1706.03762v7, https://arxiv.org/abs/1706.03762): research then fetches its "
        f"record; {TITLE_MIN}-{TITLE_MAX} characters"
    )
    include_technical_details: bool = True
    max_hashtags: int = strawberry.field(default=10, description=f"{HASHTAGS_MIN}-{HASHTAGS_MAX}")

    def to_request(self) -> PostRequest:
        """The validated request; raises `UserInputError` naming each bad field."""
        return validated(PostRequest, self._fields())


@strawberry.input(description="A post to check with the Verification team alone.")
class VerifyPostInput(_Content, _Paper):
    max_hashtags: int = strawberry.field(default=10, description=f"{HASHTAGS_MIN}-{HASHTAGS_MAX}")

    def to_request(self) -> VerifyRequest:
        """The validated request; raises `UserInputError` naming each bad field."""
        return validated(VerifyRequest, self._fields())
