"""Field shapes the settings' groups share: `count`, a number of things from 1 up."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def count(default: int | None, most: int, description: str) -> Any:
    """A setting that counts things (tasks, connections, fields): an int from 1 to
    `most`, `default` when unset (None: the setting has a computed default)."""
    return Field(default, ge=1, le=most, description=description)
