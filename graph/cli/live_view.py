"""The live view of `postassist generate` (`LiveView`): one row per agent, per team's
supervisor and for the meta-supervisor, updated by each `taskProgress` event and
redrawn a few times a second; routing decisions and status changes print above it. While
LinkedInCreator writes, the post as it is written shows below the rows (DRAFT_DELTA
events, `postassist generate --drafts`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from graph.cli.live_rows import Row, ServerClock
from graph.cli.output import console
from graph.cli.phrasing import duration, routing_reason, status_line

#: Live view refreshes per second (elapsed times and spinners move between events).
REFRESH_PER_SECOND = 4
#: The meta-supervisor's name in events (the node a resumed run may start at).
META_SUPERVISOR = "meta_supervisor"
META_LABEL = "Meta-supervisor"
#: The agent whose draft the view shows as it is written, and the most lines shown of it
#: (its end: the words being written).
WRITER = "linkedin_creator"
DRAFT_LINES = 12


class LiveView:
    """The live view of one task: a header (status, elapsed time, the plan's progress)
    and one row per agent, per team's supervisor and for the meta-supervisor, each with
    a spinner while it works, what it does or waits for, and its elapsed time. Routing
    decisions, status changes and revisions are printed above it as they happen."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.clock = ServerClock()
        self.began = self.clock.local(task["createdAt"])
        self.ended: float | None = None
        self.status, self.progress, self.note = task["status"], 0.0, ""
        self.retryable = False
        self.spinner = Spinner("dots", style="cyan")
        self.meta = Row(META_LABEL)
        self.teams: dict[str, Row] = {}
        self.agents: dict[str, Row] = {}
        self.order: list[tuple[int, Row]] = [(0, self.meta)]
        for team in task["teams"]:
            self.teams[team["name"]] = row = Row(team["displayName"])
            self.order.append((0, row))
            for agent in team["agents"]:
                self.agents[agent["name"]] = row = Row(agent["displayName"])
                self.order.append((1, row))
        self.team_of = {a["name"]: t["name"] for t in task["teams"] for a in t["agents"]}
        #: The post as it is written (DRAFT_DELTA events), while the writer works.
        self.draft = ""
        #: (attempt, draft, index) of the last DRAFT_DELTA, and whether `draft` holds
        #: every delta since the last `replace` (a gap waits for the next one).
        self._last_delta: tuple[Any, Any, Any] | None = None
        self._draft_in_sync = False

    def _row(self, team: str | None, agent: str | None) -> Row | None:
        """The row an event of `team`/`agent` belongs to (a team's own events and its
        supervisor's go to the team's row)."""
        if agent in self.agents:
            return self.agents[agent]
        if team in self.teams:
            return self.teams[team]
        return self.meta if agent else None

    def _node(self, name: str) -> Row | None:
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

    def _on_task_queued(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        self.note = event["message"]

    def _on_task_status(self, event: dict[str, Any], row: Row | None, at: float) -> None:
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

    def _on_task_resumed(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        self.status = "RUNNING"
        console.print(Text(f"task resumed: {event['message']}"))
        for name in (event.get("data") or {}).get("resumed_from") or [META_SUPERVISOR]:
            if (node := self._node(name)) is not None:
                node.start(at, "resuming")

    def _on_team_started(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.start(at, "deciding")

    def _on_team_finished(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.stop(at, "finished")
        self.meta.start(at, "deciding")

    def _on_routing(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        data = event.get("data") or {}
        target = str(data.get("next", ""))
        if row is not None:
            row.stop(at, f"-> {target}")
        style = {"model": "cyan", "fallback": "yellow"}.get(data.get("source"), "dim cyan")
        who = event.get("agent") or "supervisor"
        console.print(Text(f"{who} -> {target}: {routing_reason(data)}", style=style))

    def _on_agent_started(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.start(at, event["message"])

    def _on_tool_call(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.tool = str((event.get("data") or {}).get("tool") or event["message"])

    def _on_tool_result(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.tool = None

    def _on_llm_call(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.model_call = str((event.get("data") or {}).get("purpose") or "a call")

    def _on_llm_usage(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.model_call = None

    def _on_draft_delta(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        """Append the delta's text, or start afresh on `replace`; after a delta that
        does not follow the last one (lost while reconnecting), wait for a `replace`."""
        data = event.get("data") or {}
        text = str(data.get("text") or "")
        place = (event.get("attempt"), data.get("draft"), data.get("index"))
        last, self._last_delta = self._last_delta, place
        follows = (
            last is not None
            and last[:2] == place[:2]
            and isinstance(last[2], int)
            and place[2] == last[2] + 1
        )
        if data.get("replace"):
            self._draft_in_sync = True
        elif not follows:
            self._draft_in_sync = False
        if self._draft_in_sync:
            self.draft = text if data.get("replace") else self.draft + text

    def _on_agent_finished(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if event.get("agent") == WRITER:
            self.draft = ""  # the post is stored; the result is printed at the end
        if row is not None:
            row.stop(at, event["message"])
        if (team := self.teams.get(self.team_of.get(event.get("agent") or "", ""))) is not None:
            team.start(at, "deciding")

    def _on_agent_error(self, event: dict[str, Any], row: Row | None, at: float) -> None:
        if row is not None:
            row.stop(at, event["message"], "failed")

    def _on_message(self, event: dict[str, Any], row: Row | None, at: float) -> None:
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
        if not self.draft:
            return Group(header, rows)
        lines = self.draft.splitlines()[-DRAFT_LINES:]
        draft = Text("\n".join(lines), style="italic")
        return Group(header, rows, Text("The post as it is written:", style="bold"), draft)
