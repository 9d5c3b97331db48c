"""Field shapes the settings' groups share: `count`, a number of things from 1 up, and
`comma_separated`, a list read from one environment variable."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field


def count(default: int | None, most: int, description: str) -> Any:
    """A setting that counts things (tasks, connections, fields): an int from 1 to
    `most`, `default` when unset (None: the setting has a computed default)."""
    return Field(default, ge=1, le=most, description=description)


def comma_separated(value: Any) -> Any:
    """A list setting's value from the environment: `a,b,c` (blank parts dropped) or a
    JSON list (`["a", "b"]`); anything but a string is left to the field's own check."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value
