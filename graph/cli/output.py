"""Where `postassist generate` writes: `console` (stderr: progress, errors and notes, so
stdout holds only the result) and the result itself (`print_result`: the post, its
hashtags, the verification reports and `usage_lines`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agents.checks.wording import counted as plural
from graph.cli.phrasing import duration

console = Console(stderr=True)


def print_result(task: dict[str, Any], *, retryable: bool = False) -> None:
    """Print a finished `task` (the `TASK` query's answer) to stdout: the post in a panel
    (red, and its open issues, when the verifiers did not approve it), hashtags it does
    not show, the reports, the usage; for a task that did not complete, its error and,
    when `retryable`, the mutation that retries it."""
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
    for line in usage_lines(task):
        out.print(line)
    if result.get("approved") is False:
        out.print("[red]warning: the verifiers did not approve this post; open issues:[/red]")
        for issue in result.get("openIssues") or []:
            out.print(Text(f"  - {issue}", style="red"))


def usage_lines(task: dict[str, Any]) -> list[str]:
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
