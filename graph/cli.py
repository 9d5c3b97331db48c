"""The `postassist` command: serve the API, generate a post with live progress, manage
API keys, export SDL."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
import websockets
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from graph.client import (
    GENERATE_POST,
    TASK,
    TASK_PROGRESS,
    GraphQLClient,
    GraphQLClientError,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from db.models import ApiKey

app = typer.Typer(
    help="PostAssist: LinkedIn posts about ML papers, by LangGraph agent teams.",
    no_args_is_help=True,
)
console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8000/graphql"
#: Reconnect attempts when the subscription's WebSocket drops (resuming at the last seq).
RECONNECTS = 5
#: The environment variable `--api-key` defaults to.
API_KEY_ENVVAR = "POSTASSIST_API_KEY"
#: Longest API key name (`ApiKey.name`'s column).
KEY_NAME_MAX = 200

T = TypeVar("T")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default PORT)")] = None,
    worker: Annotated[
        bool, typer.Option(help="also run tasks here; --no-worker: API only (RUN_WORKER)")
    ] = True,
) -> None:
    """Start the GraphQL service (GraphiQL at /graphql); it also runs tasks unless
    --no-worker."""
    import uvicorn

    from graph.app import create_app
    from graph.settings import get_settings

    settings = get_settings()
    # The app decides its authentication mode from the address it is bound to.
    update: dict[str, Any] = {"host": host or settings.host, "port": port or settings.port}
    if not worker:
        update["run_worker"] = False
    settings = settings.model_copy(update=update)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


@app.command("worker")
def worker_command() -> None:
    """Run tasks from the queue, without an API, until SIGTERM or Ctrl-C (running tasks
    get SHUTDOWN_GRACE_SECONDS, the rest resume on another worker)."""
    import logging
    import signal

    from graph.app import open_services
    from graph.settings import get_settings

    settings = get_settings().model_copy(update={"run_worker": True})
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_services(settings):
            console.print(f"worker {settings.worker_config().worker_id} ready")
            await stop.wait()

    asyncio.run(work())


@app.command("export-schema")
def export_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Print the schema's SDL (or write it to --output)."""
    from graph.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output:
        output.write_text(sdl)
    else:
        sys.stdout.write(sdl)


@app.command()
def generate(
    paper_title: Annotated[str, typer.Argument(help="the paper's title")],
    context: Annotated[str, typer.Option("--context", "-c", help="abstract, results")] = "",
    audience: Annotated[str, typer.Option(help="target audience")] = "professional",
    tone: Annotated[str, typer.Option(help="PROFESSIONAL, CASUAL or ACADEMIC")] = "PROFESSIONAL",
    technical: Annotated[bool, typer.Option(help="include technical details")] = True,
    max_hashtags: Annotated[int, typer.Option(help="1-20")] = 10,
    url: Annotated[str, typer.Option(help="GraphQL endpoint")] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENVVAR,
            help="API key (postassist keys create) or JWT, sent as Authorization: Bearer; "
            "not needed by a server in local mode",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Generate a post through the API, showing each team and agent live."""
    variables = {
        "input": {
            "paperTitle": paper_title,
            "additionalContext": context,
            "targetAudience": audience,
            "tone": tone.upper(),
            "includeTechnicalDetails": technical,
            "maxHashtags": max_hashtags,
        }
    }
    try:
        client = GraphQLClient(url, api_key=api_key)
        task = asyncio.run(_generate(client, variables, quiet=as_json))
    except GraphQLClientError as exc:
        console.print(f"[red]error[/red] {escape(str(exc))}")
        if exc.code == "UNAUTHENTICATED":
            console.print(
                f"pass --api-key KEY or set {API_KEY_ENVVAR} (an admin creates keys with "
                "`postassist keys create --name NAME`)",
                soft_wrap=True,
            )
        raise typer.Exit(2) from None
    except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
        console.print(f"[red]cannot reach {url}[/red]: {exc}. Is `make run` running?")
        raise typer.Exit(3) from None
    if as_json:
        sys.stdout.write(json.dumps(task, indent=2) + "\n")
    else:
        _print_result(task)
    raise typer.Exit(0 if task["status"] == "COMPLETED" else 1)


async def _generate(client: GraphQLClient, variables: dict, *, quiet: bool) -> dict[str, Any]:
    task = (await client.execute(GENERATE_POST, variables))["generatePost"]
    view = _LiveView(task, quiet=quiet)
    last_seq, attempts = 0, 0
    with view.progress:
        while True:
            try:
                async for data in client.subscribe(
                    TASK_PROGRESS, {"taskId": task["id"], "afterSeq": last_seq}
                ):
                    event = data["taskProgress"]
                    last_seq = event["seq"]
                    view.update(event)
                break
            except (websockets.ConnectionClosed, OSError):
                attempts += 1
                if attempts > RECONNECTS:
                    raise
                await asyncio.sleep(min(2**attempts, 10))
    return (await client.execute(TASK, {"id": task["id"]}))["task"]


class _LiveView:
    """Rich progress: one bar for the task, one line per agent with its activity."""

    def __init__(self, task: dict[str, Any], *, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=24),
            TextColumn("{task.percentage:>3.0f}%"),
            console=console,
            disable=quiet,
        )
        self.overall = self.progress.add_task(f"[bold]{task['paperTitle'][:50]}", total=1.0)
        self.agents: dict[str, TaskID] = {}
        self.names: dict[str, str] = {}
        for team in task["teams"]:
            for agent in team["agents"]:
                self.names[agent["name"]] = f"{team['displayName']} / {agent['displayName']}"
                self.agents[agent["name"]] = self.progress.add_task(
                    self._label(agent["name"], "idle"), total=1.0
                )

    def _label(self, agent: str, activity: str) -> str:
        return f"  {self.names[agent]:<36} {activity[:48]}"

    def update(self, event: dict[str, Any]) -> None:
        self.progress.update(self.overall, completed=event["progress"])
        agent, kind = event.get("agent"), event["kind"]
        if kind == "TASK_STATUS":
            self.progress.console.print(f"task {event['status']}: {event['message']}")
        elif kind == "ROUTING":
            self.progress.console.print(f"[cyan]{event['message'][:110]}")
        if agent not in self.agents:
            return
        bar = self.agents[agent]
        if kind == "AGENT_STARTED":
            self.progress.update(
                bar, completed=0.1, description=self._label(agent, event["message"])
            )
        elif kind == "TOOL_CALL":
            self.progress.update(
                bar, advance=0.2, description=self._label(agent, f"tool {event['message']}")
            )
        elif kind == "LLM_USAGE":
            self.progress.update(bar, advance=0.2, description=self._label(agent, event["message"]))
        elif kind == "AGENT_FINISHED":
            self.progress.update(
                bar, completed=1.0, description=self._label(agent, "✓ " + event["message"])
            )
        elif kind == "AGENT_ERROR":
            self.progress.update(bar, description=self._label(agent, "✗ " + event["message"]))


def _print_result(task: dict[str, Any]) -> None:
    out = Console()
    if task["status"] != "COMPLETED":
        error = task.get("error") or {}
        out.print(
            f"[red]{task['status']}[/red] {error.get('code', '')}: {error.get('message', '')}"
        )
        return
    result = task["result"]
    approved = result.get("approved") is not False
    out.print(
        Panel(
            result["content"],
            title="LinkedIn post" if approved else "[red]LinkedIn post (NOT APPROVED)[/red]",
            border_style="green" if approved else "red",
            subtitle=(f"{result['characterCount']} characters, {result['wordCount']} words"),
        )
    )
    out.print("Hashtags: " + " ".join(f"#{h}" for h in result["hashtags"]))
    table = Table("report", "score", "approved", "issues")
    for report in task["verificationReports"]:
        table.add_row(
            report["agent"],
            f"{report['score']:.2f}",
            "yes" if report["approved"] else "no",
            "\n".join(report["issues"]) or "-",
        )
    out.print(table)
    usage = task["usage"]
    out.print(
        f"{usage['llmCalls']} LLM calls, {usage['inputTokens']} input + "
        f"{usage['outputTokens']} output tokens; {task['revisions']} revisions"
    )
    if result.get("approved") is False:
        out.print("[red]warning: the verifiers did not approve this post; open issues:[/red]")
        for issue in result.get("openIssues") or []:
            out.print(f"[red]  - {issue}[/red]")


keys_app = typer.Typer(
    help="API keys: create one (its token is shown once), list them, revoke one. They live "
    "in the database at DATABASE_URL, which these commands first migrate to the current "
    "schema.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def _key_name(value: str) -> str:
    """`--name` stripped; BadParameter (exit 2) when blank or too long."""
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


if __name__ == "__main__":
    app()
