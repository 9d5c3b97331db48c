"""`postassist generate` in a pseudo-terminal, against a real `postassist serve` with a
slow stub model: what a person sees during a slow run.

The CLI's output is fed to a small terminal emulator (`Screen`); every line is recorded
when it is complete (left by a line feed or erased for a redraw), with the time it was
drawn, so the test sees each frame of the live view and the final screen."""

from __future__ import annotations

import ast
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import graph.cli.generate
import graph.cli.live_rows
import graph.cli.live_view
import graph.cli.output
import graph.cli.phrasing
from tests.processes import Service, console_script, service_env, stub_model

#: Seconds per model call: long enough for the view to show a wait of 1 s and then 2 s.
LATENCY = 3.0
COLUMNS, LINES = 60, 50
TITLE = "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
CONTEXT = (
    "BERT is pre-trained on unlabeled text. It obtains new state-of-the-art results on "
    "eleven natural language processing tasks, including an 80.5 GLUE score."
)
#: A word or a piece of one, as it may stand on a screen line.
TOKEN = re.compile(r"[\w'-]+")
#: The control sequences Rich's live display writes (CSI, OSC, charset), and the rest.
CONTROL = re.compile(
    r"\x1b\[(?P<params>[?0-9;]*)(?P<command>[A-Za-z])|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]"
    r"|(?P<control>[\r\n\x08])|(?P<text>[^\x1b\r\n\x08]+)"
)
#: The modules of `postassist generate` whose string literals it may print.
CLI_MODULES = (
    graph.cli.generate,
    graph.cli.live_rows,
    graph.cli.live_view,
    graph.cli.output,
    graph.cli.phrasing,
)
SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


class Screen:
    """An unbounded terminal (scrollback included): text, CR, LF, backspace, cursor
    moves (CSI A B C D G) and line erasure (CSI K); other sequences are ignored.
    `lines` collects each line as it was when complete, with the time it was drawn."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.row = self.col = 0
        self.lines: list[tuple[float, str]] = []

    def _current(self) -> list[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def _complete(self, at: float) -> None:
        if text := "".join(self._current()).rstrip():
            self.lines.append((at, text))

    def _write(self, text: str) -> None:
        line = self._current()
        for char in text:
            line.extend(" " * (self.col - len(line)))
            if self.col < len(line):
                line[self.col] = char
            else:
                line.append(char)
            self.col += 1

    def _csi(self, command: str, params: str, at: float) -> None:
        count = int(params) if params.isdigit() else 1
        if command == "A":
            self.row = max(0, self.row - count)
        elif command == "B":
            self.row += count
        elif command == "C":
            self.col += count
        elif command == "D":
            self.col = max(0, self.col - count)
        elif command == "G":
            self.col = count - 1
        elif command == "K":
            self._complete(at)
            line = self._current()
            del line[0 if params == "2" else self.col :]

    def feed(self, data: str, at: float) -> None:
        """Interpret `data`, output that arrived `at` seconds after the start."""
        for match in CONTROL.finditer(data):
            if match["text"]:
                self._write(match["text"])
            elif match["control"] == "\r":
                self.col = 0
            elif match["control"] == "\n":
                self._complete(at)
                self.row += 1
            elif match["control"] == "\x08":
                self.col = max(0, self.col - 1)
            elif match["command"]:
                self._csi(match["command"], match["params"], at)

    def final(self) -> list[str]:
        """The screen and its scrollback at the end, top to bottom."""
        return ["".join(row).rstrip() for row in self.rows]


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> Screen:
    """Run `args` with a pseudo-terminal of COLUMNS x LINES as stdin, stdout and stderr;
    returns the screen once it exits."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    for setting in ("NO_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"):  # Rich would obey
        env.pop(setting, None)
    process = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    screen, start = Screen(), time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child and every copy of the terminal are gone
                break
            if not data:
                break
            screen.feed(data.decode(errors="replace"), time.monotonic() - start)
        assert process.wait(10) == 0, "\n".join(screen.final())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(master)
    return screen


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One `postassist generate` of TITLE through a server whose model takes LATENCY s
    per call: the screen, and the task's events and result as the server has them."""
    workdir = tmp_path_factory.mktemp("cli-live")
    with stub_model(workdir, latency=LATENCY) as model_url:
        env = service_env(f"sqlite+aiosqlite:///{workdir / 'cli.db'}", model_url)
        service = Service(env, workdir / "serve.log")
        try:
            args = [console_script(), "generate", TITLE, "--context", CONTEXT]
            screen = run_in_terminal([*args, "--url", service.url], env)
            task_id = service.gql(ONLY_TASK)["tasks"]["edges"][0]["node"]["id"]
            yield {
                "screen": screen,
                "first": next(text for _, text in screen.lines),
                "task": service.gql(TASK_SHOWN, id=task_id)["task"],
                "events": service.events(task_id),
            }
        finally:
            service.proc.stop()


ONLY_TASK = "{ tasks(first: 1) { edges { node { id } } } }"
TASK_SHOWN = """query($id: ID!) { task(id: $id) {
  id status result { content hashtags } teams { displayName agents { displayName } } } }"""


def test_the_task_id_comes_first(slow_run: dict[str, Any]) -> None:
    assert slow_run["first"] == f"task {slow_run['task']['id']}"
    assert slow_run["task"]["status"] == "COMPLETED"


def test_the_task_elapsed_time_advances(slow_run: dict[str, Any]) -> None:
    header = re.compile(r"^\S?\s*RUNNING, (\d+) s\b")
    seconds = [int(m[1]) for _, line in slow_run["screen"].lines if (m := header.match(line))]
    assert seconds == sorted(seconds), seconds
    assert len(set(seconds)) >= 10 and max(seconds) >= 4 * LATENCY, seconds


def test_a_working_agent_has_a_spinner_and_waits_for_the_model_with_seconds(
    slow_run: dict[str, Any],
) -> None:
    lines = [line for _, line in slow_run["screen"].lines]
    waits = [re.search(r"waiting for the model, (\d+) s \(", line) for line in lines]
    assert {int(m[1]) for m in waits if m} >= {1, 2}, "\n".join(lines[-40:])
    rows = [line for line in lines if re.match(r"\S\s+(PaperResearcher|TechVerifier)\b", line)]
    assert len({row[0] for row in rows} & SPINNER) >= 3, rows  # the spinner turns


def test_model_noise_is_not_shown_as_a_reason(slow_run: dict[str, Any]) -> None:
    """The stub's routing reason is "stub": one word, no sentence."""
    routed = [e["data"] for e in slow_run["events"] if e["kind"] == "ROUTING"]
    assert any(r["reason"] == "stub" and r["source"] == "model" for r in routed), routed
    text = joined(slow_run["screen"].final())
    assert not re.search(r"-> \w+: stub\b", text), text
    # the plan's own reason stands in: what it saw (the situation the server sends)
    assert "verification_supervisor -> tech_verifier: the plan: a draft is ready" in text


def joined(lines: list[str]) -> str:
    """The screen's text with every run of white space, line ends included, one space."""
    return " ".join(" ".join(lines).split())


def strings(value: Any) -> Iterator[str]:
    """Every string in `value` (JSON: dicts, lists, scalars), keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def source_words(run: dict[str, Any]) -> set[str]:
    """Every word the CLI may show whole: of the events (messages and data), the task's
    result and structure, and the CLI's own string literals (and their plurals)."""
    sources = [TITLE, CONTEXT, *strings(run["task"]), *strings(run["events"])]
    literals = [
        node.value
        for module in CLI_MODULES
        for node in ast.walk(ast.parse(Path(module.__file__ or "").read_text()))
        if isinstance(node, ast.Constant)
    ]
    sources += [value for value in literals if isinstance(value, str)]
    words = {w.strip("'-") for text in sources for w in TOKEN.findall(text)}
    return words | {w + "s" for w in words} | {"PENDING", "RUNNING", "COMPLETED"}


def broken(token: str, words: set[str]) -> bool:
    """True when `token` is not a word but the start or the end of a longer one."""
    if token in words or token.isdigit() or len(token) < 2:
        return False
    return any(w != token and (w.startswith(token) or w.endswith(token)) for w in words)


def test_no_line_is_wider_than_the_terminal_or_cuts_a_word(slow_run: dict[str, Any]) -> None:
    screen, words = slow_run["screen"], source_words(slow_run)
    lines = [line for _, line in screen.lines] + screen.final()
    assert max(len(line) for line in lines) <= COLUMNS
    cut = {
        (token, line)
        for line in lines
        for token in (t.strip("'-") for t in TOKEN.findall(line))
        if broken(token, words)
    }
    assert not cut, cut


def test_long_texts_are_wrapped_whole(slow_run: dict[str, Any]) -> None:
    """The title and every reason of the plan appear in full, wrapped at word ends."""
    text = joined(slow_run["screen"].final())
    assert TITLE in text
    reasons = [e["data"]["reason"] for e in slow_run["events"] if e["kind"] == "ROUTING"]
    plan = [r for r in reasons if r.startswith("the only valid step")]
    assert plan and all(reason in text for reason in plan), text
    assert "reports so far: style_checker, tech_verifier" in text
