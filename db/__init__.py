"""Persistence for PostAssist: SQLModel tables and the enums every layer shares (`enums`:
a task's status and kind, an event's kind, a team's or agent's status, failure codes, the
tone), the async engine, repository functions (with `repository.TaskFilter`), Alembic
migrations, the event log (durable append + broadcast + follow; the typed task
columns an event sets, `events.TaskResult`), the typed shapes of the agents' outputs
that the task row and the graph state store (`outputs`: research notes, the draft,
verification reports) and the version check every `*_compat.py` seam runs at import
(`compat`, for `agents` and `graph` too).

`db` imports neither `agents` nor `graph`. `VERSION` is the installed distribution's
version (pyproject.toml is its only source), for every layer above.
"""

from importlib.metadata import version

VERSION = version("postassist")
