"""`postassist generate`: submit a post through the API, follow its progress live over
graphql-transport-ws (reconnecting at the last event seen), then print the result."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Annotated, Any

import httpx
import typer
import websockets
from rich.markup import escape
from rich.text import Text
from typer.core import TyperCommand

from graph.cli.client import (
    GENERATE_POST,
    SUBMIT_ATTEMPTS,
    TASK,
    TASK_PROGRESS,
    GraphQLClient,
    GraphQLClientError,
)
from graph.cli.keys import API_KEY_ENVVAR
from graph.cli.live_view import LiveView
from graph.cli.output import console, print_result

DEFAULT_URL = "http://127.0.0.1:8000/graphql"
#: Reconnect attempts when the subscription's WebSocket drops (resuming at the last seq).
RECONNECTS = 5


class PlainUsageCommand(TyperCommand):
    """A command whose usage line names its arguments plainly (`PAPER_TITLE`), without
    the braces typer puts around required ones (`{PAPER_TITLE}` reads as a template
    placeholder left unfilled)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        """The usage line's pieces, each argument's name without braces."""
        return [piece.strip("{}") for piece in super().collect_usage_pieces(ctx)]


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
    drafts: Annotated[
        bool, typer.Option(help="show the post as it is written (not with --json)")
    ] = True,
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
    task, view = _follow_or_exit(url, api_key, variables, quiet=as_json, drafts=drafts)
    if as_json:
        sys.stdout.write(json.dumps(task, indent=2) + "\n")
    else:
        print_result(task, retryable=view.retryable)
    raise typer.Exit(0 if task["status"] == "COMPLETED" else 1)


def _follow_or_exit(
    url: str, api_key: str | None, variables: dict[str, Any], *, quiet: bool, drafts: bool = True
) -> tuple[dict[str, Any], LiveView]:
    """Run `_generate` against the server at `url`; the finished task and its view.
    Exits 2 when the API refuses (with how to pass a key when it wants one), 3 when
    the server cannot be reached."""
    try:
        client = GraphQLClient(url, api_key=api_key)
        return asyncio.run(_generate(client, variables, quiet=quiet, drafts=drafts and not quiet))
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


async def _generate(
    client: GraphQLClient, variables: dict, *, quiet: bool, drafts: bool = False
) -> tuple[dict[str, Any], LiveView]:
    """Submit the post with a new idempotency key (a uuid4 per invocation, resent with
    every retry of the submission after a connection error: `GraphQLClient.submit`, so
    the server starts one run however often it is retried), follow its events into a
    `LiveView` (drawn unless `quiet`; with `drafts`, the post as it is written too: the
    DRAFT_DELTA events, which carry no seq), reconnecting up to RECONNECTS times; then
    read the finished task."""

    def retrying(attempt: int, error: Exception) -> None:
        console.print(
            f"[yellow]submission failed ({escape(type(error).__name__)}); retrying with "
            f"the same idempotency key ({attempt} of {SUBMIT_ATTEMPTS - 1})[/yellow]"
        )

    submitted = await client.submit(GENERATE_POST, variables, on_retry=retrying)
    task = submitted["generatePost"]
    console.print(f"task {task['id']}", highlight=False)
    console.print(Text(task["paperTitle"], style="bold"))
    view = LiveView(task)
    last_seq, attempts = 0, 0
    with contextlib.nullcontext() if quiet else view.live():
        while True:
            try:
                variables = {"taskId": task["id"], "afterSeq": last_seq, "includeDrafts": drafts}
                async for data in client.subscribe(TASK_PROGRESS, variables):
                    event = data["taskProgress"]
                    if event["seq"] is not None:  # a DRAFT_DELTA has none
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
