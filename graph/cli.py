"""The `postassist` command: serve the API, generate a post with live progress, manage
API keys, export SDL."""

from __future__ import annotations

import asyncio
import json
import sys
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

from graph.cli_keys import API_KEY_ENVVAR, keys_app
from graph.client import (
    GENERATE_POST,
    TASK,
    TASK_PROGRESS,
    GraphQLClient,
    GraphQLClientError,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="PostAssist: LinkedIn posts about ML papers, by LangGraph agent teams.",
    no_args_is_help=True,
)
console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8000/graphql"
#: Reconnect attempts when the subscription's WebSocket drops (resuming at the last seq).
RECONNECTS = 5

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


app.add_typer(keys_app, name="keys")

if __name__ == "__main__":
    app()
