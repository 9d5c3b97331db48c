"""Persistence for PostAssist: SQLModel tables, the async engine, repository functions,
Alembic migrations and the event log (durable append + broadcast + follow).

`db` imports neither `agents` nor `graph`. `VERSION` is the installed distribution's
version (pyproject.toml is its only source), for every layer above.
"""

from importlib.metadata import version

VERSION = version("postassist")
