"""The Alembic migrations build exactly the schema the SQLModel tables declare."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import db.messages
import db.models  # noqa: F401
from db.engine import create_engine
from db.migrate import current_revision, upgrade_to_head

pytestmark = pytest.mark.anyio


async def test_head_matches_models_and_upgrade_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)  # the fixture already migrated it once
    await upgrade_to_head(engine)
    assert await current_revision(engine) == "0011"

    def diff(connection):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    await engine.dispose()
