"""The version check every `*_compat.py` seam runs at import: a seam reaches into a
library's internals, so it refuses a release of that library it was not verified with,
with a message naming what to look at, instead of failing later deep in a request.

In `db`, the lowest layer, so the seams of `agents` and `graph` use it too.
"""

from __future__ import annotations

import importlib.metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version


def require_verified(distribution: str, specifier: str, *, seam: str, check: str) -> str:
    """Return the installed version of `distribution` when `specifier` (PEP 440, e.g.
    "==3.4.*"; pre-releases of a matching release count) admits it.

    Otherwise raise `ImportError` saying which version is installed, which ones `seam`
    (the seam's path, for the message) knows, and `check`: the internals to look at
    before widening the seam's `SUPPORTED` (and the pin in pyproject.toml).
    Raises `importlib.metadata.PackageNotFoundError` when `distribution` is not
    installed.
    """
    installed = importlib.metadata.version(distribution)
    try:
        verified = SpecifierSet(specifier).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        verified = False
    if not verified:
        raise ImportError(
            f"{distribution} {installed} is installed; {seam} was verified with "
            f"{distribution}{specifier} only: check {check}, then widen SUPPORTED (and the "
            "pin in pyproject.toml)"
        )
    return installed


__all__ = ["require_verified"]
