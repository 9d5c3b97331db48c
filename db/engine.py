"""The async engine and session factory (SQLite via aiosqlite by default, any async URL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]

#: How long SQLite waits for another writer before raising "database is locked", in ms.
#: 30 s comfortably covers the longest write transaction (one event append).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(
    database_url: str,
    *,
    echo: bool = False,
    pool_timeout: float | None = 30.0,
    pool_size: int | None = None,
    statement_timeout: float | None = None,
) -> AsyncEngine:
    """Create the async engine for `database_url`.

    `database_url` is any SQLAlchemy async URL: `sqlite+aiosqlite:///path.db` (the
    default: WAL journal, foreign keys on, a busy timeout of `SQLITE_BUSY_TIMEOUT_MS`)
    or `postgresql+asyncpg://user@host/db`. A plain `sqlite://` or `postgresql://`
    URL is upgraded to its async driver.

    `pool_timeout`: seconds to wait for a pooled PostgreSQL connection before
    `sqlalchemy.exc.TimeoutError` (None: SQLAlchemy's default, 30 s).

    `pool_size`: pooled PostgreSQL connections kept (None: SQLAlchemy's 5, plus its 10
    overflow); a worker sizes it to the tasks it runs at once.

    `statement_timeout`: seconds after which PostgreSQL cancels a statement of this
    engine (its `statement_timeout`; the statement raises `sqlalchemy.exc.DBAPIError`
    wrapping asyncpg's `QueryCanceledError`). None: no limit. SQLite has no such
    setting; it is ignored there.

    Raises `sqlalchemy.exc.ArgumentError` for a URL SQLAlchemy cannot parse.
    """
    url = make_url(database_url)
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")

    kwargs: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
        if pool_timeout is not None:
            kwargs["pool_timeout"] = pool_timeout
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
        if statement_timeout is not None and url.drivername == "postgresql+asyncpg":
            milliseconds = str(max(1, round(statement_timeout * 1000)))
            kwargs["connect_args"] = {"server_settings": {"statement_timeout": milliseconds}}
    engine = create_async_engine(url, **kwargs)

    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Return a factory of `sqlmodel` `AsyncSession`s bound to `engine`.

    Sessions do not expire objects on commit, so rows read in a session stay usable
    after it closes (the GraphQL layer converts them after the fact).
    """
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def plain_url(database_url: str) -> str:
    """`database_url` for a synchronous driver of the same database, as DBOS and the
    LangGraph checkpointers take it: `sqlite:///file.db` or `postgresql://user@host/db`
    (the `+aiosqlite` / `+asyncpg` driver dropped)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    return url.set(drivername=backend).render_as_string(hide_password=False)


def is_sqlite(database_url: str) -> bool:
    """True when `database_url` names a SQLite database (the single-process mode)."""
    return make_url(database_url).get_backend_name() == "sqlite"
