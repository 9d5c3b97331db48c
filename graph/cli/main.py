"""The `postassist` command: serve the API, generate a post with live progress, manage
API keys, export SDL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import websockets
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from agents.checks.wording import counted as plural
from graph.cli.client import (
    GENERATE_POST,
    TASK,
    TASK_PROGRESS,
    GraphQLClient,
    GraphQLClientError,
)
from graph.cli.keys import API_KEY_ENVVAR, keys_app

app = typer.Typer(
    help="PostAssist: LinkedIn posts about ML papers, by LangGraph agent teams.",
    no_args_is_help=True,
)
console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8000/graphql"
#: Reconnect attempts when the subscription's WebSocket drops (resuming at the last seq).
RECONNECTS = 5
#: The meta-supervisor's name in events (the node a resumed run may start at).
META_SUPERVISOR = "meta_supervisor"


def _settings_or_exit(read: Callable[[], Any]) -> Any:
    """The settings `read()` returns; on a `SettingsError`, each problem on stderr (one
    line per setting, naming the fix) and exit code 2, before anything starts."""
    from graph.settings import SettingsError

    try:
        return read()
    except SettingsError as exc:
        console.print(Text(f"postassist: the settings are not valid:\n{exc}", style="red"))
        raise typer.Exit(2) from None


def server_options(settings: Any) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` for `settings` (a `graph.settings.Settings`),
    beyond the app: where to listen, the log level, and the limits uvicorn enforces
    before the app sees a byte (README "Security"):

    - `ws_max_size`: WebSocket messages up to `WS_MAX_SIZE` bytes (uvicorn's default is
      16 MiB); a larger one closes with 1009.
    - `proxy_headers`/`forwarded_allow_ips`: `X-Forwarded-For` and `-Proto` believed
      only from `FORWARDED_ALLOW_IPS` (none by default; uvicorn's own default trusts
      loopback, so any local process could name the client).
    - `http`: uvicorn's HTTP protocol with a deadline of `HTTP_HEADER_TIMEOUT_SECONDS`
      and a 16 KiB cap on each request head (`graph.transport.uvicorn_compat`).
    - `timeout_keep_alive`: uvicorn's 5 s, kept (an idle kept-alive connection closes).
    - no `limit_concurrency`: it counts every connection and WebSocket and answers 503 to
      everyone past it, so one client could fill it for all; per-principal caps
      (`WS_MAX_CONNECTIONS_PER_PRINCIPAL`) and the deadlines bound one client instead."""
    from graph.transport.uvicorn_compat import header_deadline_protocol

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "ws_max_size": settings.ws_max_size,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or [],
        "http": header_deadline_protocol(settings.http_header_timeout_seconds),
        "timeout_keep_alive": 5,
    }


#: The service's own loggers, shown at LOG_LEVEL; libraries' (alembic, dbos, httpx) at
#: WARNING and above (DBOS alone logs ~130 INFO lines of migrations at each start).
OWN_LOGGERS = ("graph", "agents", "db")


def _configure_logging(settings: Any) -> None:
    """Send log records to stderr as `LEVEL logger: message`: the service's own
    (`OWN_LOGGERS`) at `LOG_LEVEL`, libraries' at WARNING. uvicorn configures only its
    own loggers, so without this the app's INFO lines (a client leaving mid-body, why a
    JWT was refused) were never shown and its warnings came out unformatted."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level.upper())


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

    settings = _settings_or_exit(get_settings)
    # The app decides its authentication mode from the address it is bound to.
    update: dict[str, Any] = {"host": host or settings.host, "port": port or settings.port}
    if not worker:
        update["run_worker"] = False
    settings = settings.model_copy(update=update)
    _configure_logging(settings)
    uvicorn.run(create_app(settings), **server_options(settings))


@app.command("worker")
def worker_command() -> None:
    """Run tasks from the queue, without an API, until SIGTERM or Ctrl-C (running tasks
    get SHUTDOWN_GRACE_SECONDS, the rest resume on another worker)."""
    import signal

    from graph.services import open_services
    from graph.settings import get_settings

    settings = _settings_or_exit(get_settings).model_copy(update={"run_worker": True})
    _configure_logging(settings)

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
    from graph.api.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output:
        output.write_text(sdl)
    else:
        sys.stdout.write(sdl)


class PlainUsageCommand(TyperCommand):
    """A command whose usage line names its arguments plainly (`PAPER_TITLE`), without
    the braces typer puts around required ones (`{PAPER_TITLE}` reads as a template
    placeholder left unfilled)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        """The usage line's pieces, each argument's name without braces."""
        return [piece.strip("{}") for piece in super().collect_usage_pieces(ctx)]


@app.command(cls=PlainUsageCommand)
def generate(
    paper_title: Annotated[
        str,
        typer.Argument(
            metavar="PAPER_TITLE",
            help="the paper's title, or its arXiv id or link (1706.03762)",
            show_default=False,
        ),
    ],
    context: Annotated[str, typer.Option("--context", "-c", help="abstract, results")] = "",
    audience: Annotated[str, typer.Option(help="target audience")] = "professional",
    tone: Annotated[str, typer.Option(help="PROFESSIONAL, CASUAL or ACADEMIC")] = "PROFESSIONAL",
    technical: Annotated[bool, typer.Option(help="include technical details")] = True,
    max_hashtags: Annotated[int, typer.Option(help="1-20")] = 10,
    url: Annotated[
        str, typer.Option(help="the server's GraphQL endpoint (its path is /graphql)")
    ] = DEFAULT_URL,
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
        task, view = asyncio.run(_generate(client, variables, quiet=as_json))
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
        console.print(
            f"[red]cannot reach {escape(url)}[/red]: {escape(str(exc))}. Is `make run` running?"
        )
        raise typer.Exit(3) from None
    if as_json:
        sys.stdout.write(json.dumps(task, indent=2) + "\n")
    else:
        _print_result(task, retryable=view.retryable)
    raise typer.Exit(0 if task["status"] == "COMPLETED" else 1)


async def _generate(
    client: GraphQLClient, variables: dict, *, quiet: bool
) -> tuple[dict[str, Any], LiveView]:
    task = (await client.execute(GENERATE_POST, variables))["generatePost"]
    console.print(f"task {task['id']}", highlight=False)
    console.print(Text(task["paperTitle"], style="bold"))
    view = LiveView(task)
    last_seq, attempts = 0, 0
    with contextlib.nullcontext() if quiet else view.live():
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
                view.note = f"connection lost; reconnecting ({attempts} of {RECONNECTS})"
                await asyncio.sleep(min(2**attempts, 10))
    return (await client.execute(TASK, {"id": task["id"]}))["task"], view


# --- wording ------------------------------------------------------------------------

#: A word for `is_sentence`: letters only, with inner apostrophes or hyphens ("don't",
#: "state-of-the-art"); identifiers (`style_checker`) and numbers are not words.
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
#: Words a reason needs to be a sentence rather than a name or a fragment.
MIN_REASON_WORDS = 3
#: What a model says when it has no reason: an admission, not a reason.
_ADMISSION = re.compile(
    r"\b(not sure|unsure|no idea|(don'?t|do not) know|not certain|(need|want) (a little |"
    r"some |your )?help|what to do|(cannot|can'?t) (decide|tell))\b",
    re.IGNORECASE,
)


def is_sentence(text: str) -> bool:
    """True when `text` reads as a reason: at least `MIN_REASON_WORDS` words of letters
    that make up most of it, and not an admission ("I am not sure what to do now").
    Bare names, numbers and punctuation ("style_checker", "1.2,3", "-") are not."""
    tokens = text.split()
    words = [t for t in tokens if _WORD.fullmatch(t.strip(".,;:!?()[]\"'"))]
    return (
        len(words) >= MIN_REASON_WORDS
        and 2 * len(words) > len(tokens)
        and not _ADMISSION.search(text)
    )


def routing_reason(data: dict[str, Any]) -> str:
    """The reason to show for a ROUTING event's `data`: the supervisor's own when the
    plan or a fallback wrote it, or when the model gave a sentence; otherwise the plan's
    own reason (its `situation`, from servers that send it), or what the plan makes of
    the model's choice (its default step, or one of the valid options)."""
    reason = str(data.get("reason") or "").strip()
    if data.get("source") != "model" or is_sentence(reason):
        return reason
    if situation := str(data.get("situation") or "").strip():
        return f"the plan: {situation} (the model gave no usable reason)"
    options = [str(option) for option in data.get("options") or []]
    if options and data.get("next") == options[0]:
        return "the default plan's next step (the model gave no usable reason)"
    return f"one of the valid steps ({', '.join(options)}); the model gave no usable reason"


def duration(seconds: float) -> str:
    """Elapsed time for people: "12 s", "2 min 05 s", "1 h 02 min"."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def status_line(status: str, message: str) -> str:
    """A TASK_STATUS event as one line: "task RUNNING", "task FAILED: <why>" (a message
    that only repeats the status, such as "completed" or "started", is left out)."""
    if message.strip().lower() in {status.lower(), "started", *_STATUS_WORDS}:
        return f"task {status}"
    return f"task {status}: {message}"


_STATUS_WORDS = {"queued", "pending", "running", "completed", "failed", "cancelled"}


# --- the live view ------------------------------------------------------------------

#: Live view refreshes per second (elapsed times and spinners move between events).
REFRESH_PER_SECOND = 4
#: Seconds a working agent may report nothing, with no tool call or model call open,
#: before the view says it waits for the model anyway. A server reports a model call's
#: start (LLM_CALL) and end (LLM_USAGE); one older than LLM_CALL reports only the end,
#: and everything else an agent does between two events (parsing, the tools' checks,
#: which report TOOL_CALL/TOOL_RESULT) takes milliseconds.
MODEL_WAIT_AFTER = 1.0
META_LABEL = "Meta-supervisor"


def waiting_for(since: float, tool: str | None, model_call: str | None = None) -> str | None:
    """What a working agent waits for, `since` seconds after its last event: the tool
    call it opened ("running tool check_linkedin_style, 2 s"), the model call it sent
    ("waiting for the model, 12 s (hook sentence)"), else, after `MODEL_WAIT_AFTER` seconds,
    the model all the same ("waiting for the model, 12 s"); None when it reported
    something a moment ago."""
    if tool:
        return f"running tool {tool}, {duration(since)}"
    if model_call:
        return f"waiting for the model, {duration(since)} ({model_call})"  # time first: it wraps
    if since >= MODEL_WAIT_AFTER:
        return f"waiting for the model, {duration(since)}"
    return None


class _Clock:
    """Server timestamps on this machine's monotonic clock. The offset is the smallest
    (arrival - server time) seen, so a replayed event does not move it and a server
    whose clock is off does not show as elapsed time."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def local(self, timestamp: str) -> float:
        """The monotonic time at which the event stamped `timestamp` happened here."""
        server = datetime.fromisoformat(timestamp).timestamp()
        offset = time.monotonic() - server
        if self.offset is None or offset < self.offset:
            self.offset = offset
        return server + self.offset


@dataclass
class _Row:
    """One line of the live view: an agent, a team (its supervisor) or the
    meta-supervisor; times are monotonic seconds."""

    label: str
    status: str = "idle"  # idle | working | done | failed
    doing: str = "idle"  # while working: what it does; else: what it did last
    started: float | None = None
    ended: float | None = None
    last_event: float = 0.0
    tool: str | None = None
    model_call: str | None = None  # the purpose of the model call it waits for
    spinner: Spinner = field(default_factory=lambda: Spinner("dots", style="cyan"))

    def start(self, at: float, doing: str) -> None:
        """It starts working at `at` on `doing`."""
        self.status, self.doing, self.started, self.ended = "working", doing, at, None
        self.last_event, self.tool, self.model_call = at, None, None

    def stop(self, at: float, outcome: str, status: str = "done") -> None:
        """It stops at `at`; `outcome` is what it did (or why it stopped)."""
        self.status, self.doing, self.tool, self.model_call = status, outcome, None, None
        self.ended = at if self.started is not None else None

    def waiting_for(self, now: float) -> str | None:
        """What this working row waits for now (see `waiting_for`)."""
        return waiting_for(now - self.last_event, self.tool, self.model_call)

    def elapsed(self, now: float) -> str:
        """How long it has been working (or worked), "" before it started."""
        if self.started is None:
            return ""
        return duration((self.ended if self.ended is not None else now) - self.started)

    def cells(self, now: float) -> tuple[RenderableType, Text, str]:
        """The icon, the activity text and the elapsed time of this row."""
        if self.status == "working":
            wait = self.waiting_for(now)
            text = Text(self.doing if wait is None else f"{self.doing}\n{wait}")
            return self.spinner, text, self.elapsed(now)
        icon = {"done": "[green]✓", "failed": "[red]✗"}.get(self.status, "[dim]·")
        return Text.from_markup(icon), Text(self.doing), self.elapsed(now)


class LiveView:
    """The live view of one task: a header (status, elapsed time, the plan's progress)
    and one row per agent, per team's supervisor and for the meta-supervisor, each with
    a spinner while it works, what it does or waits for, and its elapsed time. Routing
    decisions, status changes and revisions are printed above it as they happen."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.clock = _Clock()
        self.began = self.clock.local(task["createdAt"])
        self.ended: float | None = None
        self.status, self.progress, self.note = task["status"], 0.0, ""
        self.retryable = False
        self.spinner = Spinner("dots", style="cyan")
        self.meta = _Row(META_LABEL)
        self.teams: dict[str, _Row] = {}
        self.agents: dict[str, _Row] = {}
        self.order: list[tuple[int, _Row]] = [(0, self.meta)]
        for team in task["teams"]:
            self.teams[team["name"]] = row = _Row(team["displayName"])
            self.order.append((0, row))
            for agent in team["agents"]:
                self.agents[agent["name"]] = row = _Row(agent["displayName"])
                self.order.append((1, row))
        self.team_of = {a["name"]: t["name"] for t in task["teams"] for a in t["agents"]}

    def _row(self, team: str | None, agent: str | None) -> _Row | None:
        """The row an event of `team`/`agent` belongs to (a team's own events and its
        supervisor's go to the team's row)."""
        if agent in self.agents:
            return self.agents[agent]
        if team in self.teams:
            return self.teams[team]
        return self.meta if agent else None

    def _node(self, name: str) -> _Row | None:
        """The row of a graph node named `name` (an agent, a team or the meta node)."""
        return self.agents.get(name) or self.teams.get(name) or (self.meta if name else None)

    def update(self, event: dict[str, Any]) -> None:
        """Apply one `taskProgress` event."""
        at = self.clock.local(event["timestamp"])
        self.progress, self.note = event["progress"], ""
        row = self._row(event.get("team"), event.get("agent"))
        if row is not None:
            row.last_event = at
        handler = getattr(self, f"_on_{event['kind'].lower()}", None)
        if handler is not None:
            handler(event, row, at)

    def _on_task_queued(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        self.note = event["message"]

    def _on_task_status(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        self.status = event["status"]
        style = {"FAILED": "red", "CANCELLED": "yellow", "COMPLETED": "green"}
        line = status_line(event["status"], event["message"])
        console.print(Text(line, style=style.get(self.status, "")))
        if self.status == "RUNNING":
            self.meta.start(at, "deciding")
        if event.get("isTerminal"):
            self.ended = at
            self.retryable = bool((event.get("data") or {}).get("retryable"))
            for _, each in self.order:
                if each.status == "working":
                    each.stop(at, f"stopped: task {self.status}", "failed")

    def _on_task_resumed(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        self.status = "RUNNING"
        console.print(Text(f"task resumed: {event['message']}"))
        for name in (event.get("data") or {}).get("resumed_from") or [META_SUPERVISOR]:
            if (node := self._node(name)) is not None:
                node.start(at, "resuming")

    def _on_team_started(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.start(at, "deciding")

    def _on_team_finished(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.stop(at, "finished")
        self.meta.start(at, "deciding")

    def _on_routing(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        data = event.get("data") or {}
        target = str(data.get("next", ""))
        if row is not None:
            row.stop(at, f"-> {target}")
        style = {"model": "cyan", "fallback": "yellow"}.get(data.get("source"), "dim cyan")
        who = event.get("agent") or "supervisor"
        console.print(Text(f"{who} -> {target}: {routing_reason(data)}", style=style))

    def _on_agent_started(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.start(at, event["message"])

    def _on_tool_call(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.tool = str((event.get("data") or {}).get("tool") or event["message"])

    def _on_tool_result(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.tool = None

    def _on_llm_call(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.model_call = str((event.get("data") or {}).get("purpose") or "a call")

    def _on_llm_usage(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.model_call = None

    def _on_agent_finished(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.stop(at, event["message"])
        if (team := self.teams.get(self.team_of.get(event.get("agent") or "", ""))) is not None:
            team.start(at, "deciding")

    def _on_agent_error(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        if row is not None:
            row.stop(at, event["message"], "failed")

    def _on_message(self, event: dict[str, Any], row: _Row | None, at: float) -> None:
        console.print(Text(event["message"], style="magenta"))

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        """Redraw this view a few times a second meanwhile (text printed goes above
        it); elsewhere than on a terminal, Rich draws it once, at the end."""
        with Live(self, console=console, refresh_per_second=REFRESH_PER_SECOND):
            yield
        if not console.is_terminal:  # Rich ends its last drawing with a line feed only there
            console.line()

    def __rich_console__(self, _console: Console, _options: ConsoleOptions) -> RenderResult:
        """Rich's hook: the view as it is at the moment it is drawn."""
        yield self.render()

    def render(self) -> RenderableType:
        """The view as it is now."""
        now = time.monotonic()
        elapsed = duration((self.ended if self.ended is not None else now) - self.began)
        header = Table.grid(padding=(0, 1))
        header.add_row(
            self.spinner if self.ended is None else Text(" "),
            Text(f"{self.status}, {elapsed}", style="bold"),
            ProgressBar(total=1.0, completed=self.progress, width=20),
            Text(f"{self.progress:.0%}"),
        )
        if self.note:
            header.add_row("", Text(self.note, style="yellow"))
        rows = Table.grid(padding=(0, 1))
        rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True)
        rows.add_column(ratio=1, overflow="fold")
        rows.add_column(no_wrap=True, justify="right")
        for indent, row in self.order:
            icon, activity, took = row.cells(now)
            rows.add_row(icon, Text("  " * indent + row.label), activity, took)
        return Group(header, rows)


def _print_result(task: dict[str, Any], *, retryable: bool = False) -> None:
    out = Console()
    if task["status"] != "COMPLETED":
        error = task.get("error") or {}
        out.print(
            Text.assemble(
                (task["status"], "red"), f" {error.get('code', '')}: {error.get('message', '')}"
            )
        )
        if retryable:  # the mutation on a line of its own, unwrapped, to copy
            out.print("retry it from its last checkpoint with the mutation")
            out.print(f'retryTask(id: "{task["id"]}") {{ status }}', soft_wrap=True)
        return
    result = task["result"]
    approved = result.get("approved") is not False
    out.print(
        Panel(
            result["content"],
            title="LinkedIn post" if approved else "[red]LinkedIn post (NOT APPROVED)[/red]",
            border_style="green" if approved else "red",
            subtitle=(
                f"{plural(result['characterCount'], 'character')}, "
                f"{plural(result['wordCount'], 'word')}"
            ),
        )
    )
    shown = set(re.findall(r"#(\w+)", result["content"]))
    missing = [h for h in result["hashtags"] if h not in shown]
    if missing:  # the post carries its hashtags; list only any it does not show
        out.print("Hashtags: " + " ".join(f"#{h}" for h in missing))
    table = Table("report", "score", "approved", "issues")
    for report in task["verificationReports"]:
        table.add_row(
            report["agent"],
            f"{report['score']:.2f}",
            "yes" if report["approved"] else "no",
            "\n".join(report["issues"]) or "-",
        )
    out.print(table)
    for line in _usage_lines(task):
        out.print(line)
    if result.get("approved") is False:
        out.print("[red]warning: the verifiers did not approve this post; open issues:[/red]")
        for issue in result.get("openIssues") or []:
            out.print(Text(f"  - {issue}", style="red"))


def _usage_lines(task: dict[str, Any]) -> list[str]:
    """How long the task took and its revisions; its model calls and tokens."""
    usage, lines = task["usage"], []
    if task.get("createdAt") and task.get("completedAt"):
        took = datetime.fromisoformat(task["completedAt"]) - datetime.fromisoformat(
            task["createdAt"]
        )
        lines.append(
            f"took {duration(took.total_seconds())}, {plural(task['revisions'], 'revision')}"
        )
    else:
        lines.append(plural(task["revisions"], "revision"))
    lines.append(
        f"{plural(usage['llmCalls'], 'LLM call')}: {usage['inputTokens']} input + "
        f"{plural(usage['outputTokens'], 'output token')}"
    )
    return lines


app.add_typer(keys_app, name="keys")

if __name__ == "__main__":
    app()
