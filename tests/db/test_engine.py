"""The engine's limits on a real database: PostgreSQL cancels a statement that runs
past `statement_timeout`, and the connection is usable afterwards. (SQLite has no
statement timeout.)"""

from __future__ import annotations

import time

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from db.engine import create_engine
from tests.conftest import _drop_postgres_database, _postgres_database, service_missing

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_a_statement_past_the_timeout_is_cancelled() -> None:
    name = await _postgres_database()
    if name is None:
        service_missing("PostgreSQL is not running on 127.0.0.1:5432")
    engine = create_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", statement_timeout=0.3
    )
    try:
        async with engine.connect() as connection:
            start = time.perf_counter()
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(5)"))
            assert time.perf_counter() - start < 2
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
        await _drop_postgres_database(name)
