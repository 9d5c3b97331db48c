"""Bring a database to the current schema with the Alembic migrations in `db/migrations`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic `Config` for PostAssist's migrations (no alembic.ini needed).

    When `connection` is given, `env.py` runs the migrations on it instead of
    opening its own.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration to `engine`'s database (idempotent).

    Raises whatever the database raises if a migration fails; the transaction is
    rolled back, so the schema is left at the last complete revision.
    """

    def _upgrade(sync_connection: Connection) -> None:
        command.upgrade(alembic_config(sync_connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """Return the database's Alembic revision id, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    def _current(sync_connection: Connection) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)
