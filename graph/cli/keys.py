"""`postassist keys`: create an API key (its token is shown once), list the keys, revoke
one. They live in the database at DATABASE_URL, which each command first migrates."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from db.models import ApiKey

console = Console(stderr=True)
#: The environment variable the CLI's `--api-key` defaults to.
API_KEY_ENVVAR = "POSTASSIST_API_KEY"

T = TypeVar("T")


keys_app = typer.Typer(
    help="API keys: create one (its token is shown once), list them, revoke one. They live "
    "in the database at DATABASE_URL, which these commands first migrate to the current "
    "schema.",
    no_args_is_help=True,
)


def _key_name(value: str) -> str:
    """`--name` stripped; BadParameter (exit 2) when blank or too long."""
    from db.models import KEY_NAME_MAX  # here: the CLI starts without the database layer

    name = value.strip()
    if not name:
        raise typer.BadParameter("a key needs a name; it must not be empty or blank")
    if len(name) > KEY_NAME_MAX:
        raise typer.BadParameter(f"at most {KEY_NAME_MAX} characters, not {len(name)}")
    return name


def _shown_url(database_url: str) -> str:
    """`database_url` with its password hidden, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "DATABASE_URL"


def _on_database(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate the database at DATABASE_URL to head, run `work` in one session, dispose
    the engine; return what `work` returned. Exits 3 (message on stderr) when the
    database cannot be opened, migrated or written."""
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import create_engine, create_session_factory
    from db.migrate import upgrade_to_head
    from graph.settings import get_settings

    database_url = get_settings().database_url

    async def run() -> T:
        engine = create_engine(database_url)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        console.print(
            f"[red]cannot use the database {escape(_shown_url(database_url))}[/red]: "
            f"{escape(str(exc))}"
        )
        raise typer.Exit(3) from None


def _when(moment: datetime | None) -> str | None:
    """An ISO 8601 UTC timestamp to the second, or None."""
    return moment.isoformat(timespec="seconds") if moment else None


def _short(when: str | None) -> str | None:
    """`2025-01-02T03:04:05+00:00` -> `2025-01-02 03:04:05` (the table says UTC)."""
    return when.removesuffix("+00:00").replace("T", " ") if when else None


def _key_row(key: ApiKey) -> dict[str, Any]:
    """What `keys list` shows of a key: never its token or hash."""
    return {
        "id": key.id,
        "name": key.name,
        "admin": key.admin,
        "created_at": _when(key.created_at),
        "revoked_at": _when(key.revoked_at),
    }


@keys_app.command("create")
def keys_create(
    name: Annotated[
        str,
        typer.Option(
            "--name",
            "-n",
            help="who or what the key is for (shown by `keys list`)",
            callback=_key_name,
        ),
    ],
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="the key sees every principal's tasks, not only the ones it created"
        ),
    ] = False,
) -> None:
    """Create an API key; print its token (once) to stdout.

    stdout holds the token alone, so KEY=$(postassist keys create --name ci) works; the
    key's id and name go to stderr. The database keeps only the token's SHA-256.
    """
    from db import keys

    async def create(session: AsyncSession) -> tuple[ApiKey, str, int]:
        key, token = await keys.create_key(session=session, name=name, admin=admin)
        return key, token, await keys.count_active_keys(session=session)

    key, token, active = _on_database(create)
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    console.print(
        f"created API key {key.id} (name {escape(repr(key.name))}, "
        f"{'admin' if key.admin else 'not admin'}); store it now: it is not shown again. "
        f"Send it as `Authorization: Bearer <token>` (the CLI: --api-key or {API_KEY_ENVVAR}).",
        soft_wrap=True,
        highlight=False,
    )
    if active == 1:
        console.print(
            "This is the only active key: a server in local mode now requires a key from "
            "every caller (within AUTH_CACHE_SECONDS).",
            soft_wrap=True,
            highlight=False,
        )


@keys_app.command("list")
def keys_list(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="a JSON list of {id, name, admin, created_at, revoked_at} instead"
        ),
    ] = False,
) -> None:
    """List every API key, revoked ones included (never a token or its hash).

    Oldest first: id, name, admin, created, revoked (UTC).
    """
    from db import keys

    async def read(session: AsyncSession) -> list[ApiKey]:
        return await keys.list_keys(session=session)

    rows = [_key_row(key) for key in _on_database(read)]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        console.print("no API keys yet; create one with `postassist keys create --name NAME`")
        return
    table = Table("id", "name", "admin", "created (UTC)", "revoked (UTC)")
    for row in rows:
        table.add_row(
            row["id"],
            escape(row["name"]),
            "yes" if row["admin"] else "no",
            _short(row["created_at"]),
            _short(row["revoked_at"]) or "-",
        )
    Console(highlight=False).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="the key's id as `keys list` shows it (the 8 hex characters after `pa_` "
            "in its token)",
            show_default=False,
        ),
    ],
) -> None:
    """Revoke an API key: servers stop accepting it within AUTH_CACHE_SECONDS.

    Its row stays, so `keys list` still shows it. Exits 1 for an unknown id; revoking a
    revoked key changes nothing.
    """
    from db import keys
    from db.models import ApiKey

    wanted = key_id.strip()

    async def revoke(session: AsyncSession) -> tuple[ApiKey | None, bool]:
        before = await session.get(ApiKey, wanted)
        already = before is not None and before.revoked_at is not None
        return await keys.revoke_key(session=session, key_id=wanted), already

    key, already = _on_database(revoke)
    if key is None:
        if wanted.startswith(keys.TOKEN_PREFIX):
            message = "that is a token, not a key id: pass the 8 hex characters after `pa_`"
        else:
            message = f"no API key has id {escape(repr(wanted))}; see `postassist keys list`"
        console.print(f"[red]error[/red] {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    label = f"API key {key.id} (name {escape(repr(key.name))})"
    if already:
        console.print(
            f"{label} was already revoked at {_when(key.revoked_at)}; nothing changed",
            soft_wrap=True,
            highlight=False,
        )
    else:
        console.print(
            f"revoked {label}; servers stop accepting it within AUTH_CACHE_SECONDS",
            soft_wrap=True,
            highlight=False,
        )
