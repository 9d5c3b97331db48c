"""The engine's limits on a real database: PostgreSQL cancels a statement that runs
past `statement_timeout`, and the connection is usable afterwards."""

from __future__ import annotations

import time

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from db.engine import create_engine, is_sqlite

pytestmark = pytest.mark.anyio


async def test_a_statement_past_the_timeout_is_cancelled(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("SQLite has no statement timeout")
    engine = create_engine(database_url, statement_timeout=0.3)
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
