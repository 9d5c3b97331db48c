"""The rows of the live view: `Row` (an agent, a team's supervisor or the
meta-supervisor: what it does or waits for, and for how long) and `ServerClock`
(server timestamps on this machine's monotonic clock)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import RenderableType
from rich.spinner import Spinner
from rich.text import Text

from graph.cli.phrasing import duration, waiting_for


class ServerClock:
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
class Row:
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
