"""The commands that run the service: `serve` (the API, and tasks unless --no-worker),
`worker` (tasks only) and `export-schema` (the SDL); with the uvicorn options the API
runs under (`server_options`) and the log set-up both share."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from graph.cli.output import console
from graph.telemetry import OWN_LOGGERS as OWN_LOGGERS  # the loggers at LOG_LEVEL


def _settings_or_exit(read: Callable[[], Any]) -> Any:
    """The settings `read()` returns; on a `SettingsError`, each problem on stderr (one
    line per setting, naming the fix) and exit code 2, before anything starts."""
    from graph.settings import SettingsError

    try:
        return read()
    except SettingsError as exc:
        console.print(Text(f"postassist: the settings are not valid:\n{exc}", style="red"))
        raise typer.Exit(2) from None


def _validation_as_settings_error(read: Callable[[], Any]) -> Callable[[], Any]:
    """`read`, with a pydantic `ValidationError` raised as the `SettingsError` that
    `_settings_or_exit` reports."""
    from pydantic import ValidationError

    from graph.settings import SettingsError
    from graph.settings.core import describe

    def checked() -> Any:
        try:
            return read()
        except ValidationError as exc:
            raise SettingsError(describe(exc)) from None

    return checked


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
        "log_config": None,  # uvicorn's loggers go through `_configure_logging`'s handler
    }


def _configure_logging(settings: Any) -> None:
    """Send every log record to stderr through structlog (`graph.telemetry.logs`), as
    JSON lines or console lines (`LOG_FORMAT`): the service's own (`OWN_LOGGERS`) and
    uvicorn's at `LOG_LEVEL`, libraries' at WARNING. uvicorn configures only its own
    loggers, so without this the app's INFO lines (a client leaving mid-body, why a JWT
    was refused) were never shown and its warnings came out unformatted."""
    from graph.telemetry.logs import configure_logging

    configure_logging(level=settings.log_level, fmt=settings.log_format)


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


def worker_command(
    consume: Annotated[
        bool,
        typer.Option(
            "--consume",
            help="also take generation requests from the broker (BROKER_CONSUME; needs "
            "BROKER_URL and BROKER_PRINCIPALS)",
        ),
    ] = False,
) -> None:
    """Run tasks from the queue, without an API, until SIGTERM or Ctrl-C (running tasks
    get SHUTDOWN_GRACE_SECONDS, the rest resume on another worker)."""
    import signal

    from graph.services import open_services
    from graph.settings import Settings, get_settings

    def read() -> Settings:
        settings = get_settings()
        if consume and not settings.broker_consume:  # validated again: its conflicts
            return Settings.model_validate({**settings.model_dump(), "broker_consume": True})
        return settings

    settings = _settings_or_exit(_validation_as_settings_error(read)).model_copy(
        update={"run_worker": True}
    )
    _configure_logging(settings)
    from graph.telemetry.endpoint import mark_exited
    from graph.telemetry.tracing import setup_tracing, shutdown_tracing

    setup_tracing(settings)  # the runs' spans; None (nothing imported) when off

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_services(settings):
            console.print(f"worker {settings.worker_config().worker_id} ready")
            await stop.wait()

    try:
        asyncio.run(work())
    finally:
        shutdown_tracing()
        mark_exited(settings)


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
