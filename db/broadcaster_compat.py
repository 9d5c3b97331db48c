"""The one place that touches broadcaster's private modules.

`db.bus` implements its own Redis backend and `Bus.subscribe`, so it needs two names
broadcaster 0.3 does not export: the backend base class (`_backends.base`) and the
`Subscriber` a subscription yields (`_base`). They are imported here only, after a
check of the installed version, so an upgrade that moves them fails at import with a
message instead of deep in a subscription.
"""

from __future__ import annotations

from importlib.metadata import version

#: The broadcaster releases whose private layout this module was written against.
SUPPORTED = ("0.3.",)

_installed = version("broadcaster")
if not _installed.startswith(SUPPORTED):
    raise ImportError(
        f"broadcaster {_installed} is installed; db/broadcaster_compat.py knows the private "
        f"modules of {', '.join(v + 'x' for v in SUPPORTED)} only: check "
        "broadcaster._backends.base.BroadcastBackend and broadcaster._base.Subscriber, "
        "then widen SUPPORTED (and the pin in pyproject.toml)"
    )

from broadcaster._backends.base import BroadcastBackend  # noqa: E402
from broadcaster._base import Subscriber  # noqa: E402

__all__ = ["BroadcastBackend", "Subscriber"]
