"""What a request message holds: the CloudEvent read from a message's bytes and
headers (`read_event`, structured or binary mode), its `data` as a `PostRequest`
(`post_request`, camelCase fields as the GraphQL API takes them), and the reasons a
request is refused (`FieldError`) or cannot be read at all (`Unreadable`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from db.models import PostRequest

_FIELDS = {to_camel(name): name for name in PostRequest.model_fields}


class Unreadable(ValueError):
    """A message that is not a request PostAssist can read; the message says why."""


@dataclass(frozen=True)
class FieldError:
    """One reason a request was refused: `field` (camelCase, or `principal`, `id`),
    `message`, `code` (FORBIDDEN, BAD_USER_INPUT, CONFLICT, RATE_LIMITED)."""

    field: str
    message: str
    code: str = "BAD_USER_INPUT"


def read_event(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes and `data` (a JSON object) of the CloudEvent in a message:
    structured (a JSON body with `specversion`) or binary (`ce-*` headers, the body its
    data). Raises `Unreadable` (and whatever a reader raises on input it cannot take:
    `RequestConsumer` treats any error here as unreadable)."""
    binary = "ce-specversion" in headers
    if not binary:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Unreadable("not JSON (nor a binary-mode CloudEvent)") from None
        except RecursionError:
            raise Unreadable("JSON nested too deeply to read") from None
        if not isinstance(parsed, dict) or "specversion" not in parsed:
            raise Unreadable("not a CloudEvent: a JSON object with specversion expected")
        headers = {"content-type": "application/cloudevents+json"}
    try:
        event = from_http_event(HTTPMessage(headers, body))
    except Exception as exc:
        raise Unreadable(f"not a CloudEvent: {exc}"[:500]) from None
    data = event.get_data()
    if data is None:
        raise Unreadable("the CloudEvent has no data")
    if not isinstance(data, dict):
        raise Unreadable("the CloudEvent's data is not a JSON object (a GeneratePostInput)")
    return dict(event.get_attributes()), data


def post_request(data: dict[str, Any]) -> PostRequest | list[FieldError]:
    """`data` (camelCase, `GeneratePostInput`'s fields) as a validated `PostRequest`,
    or an error per bad or unknown field."""
    errors = [
        FieldError(key, f"{key}: not a field of GeneratePostInput")
        for key in data
        if key not in _FIELDS
    ]
    values = {_FIELDS[key]: value for key, value in data.items() if key in _FIELDS}
    try:
        request = PostRequest.model_validate(values)
    except ValidationError as exc:
        seen: dict[str, FieldError] = {}
        for error in exc.errors():
            name = to_camel(str(error["loc"][0])) if error["loc"] else "input"
            seen.setdefault(name, FieldError(name, f"{name}: {error['msg']}"))
        return errors + list(seen.values())
    return errors or request


__all__ = ["FieldError", "Unreadable", "post_request", "read_event"]
