"""Structured logs: every record (the service's, uvicorn's, DBOS's, any library's) goes
through structlog's `ProcessorFormatter` on one stderr handler, as one JSON object per
line (`LOG_FORMAT=json`) or an aligned, coloured line for people (`console`; the default
when stderr is a terminal).

Each line has `timestamp` (UTC, ISO 8601), `level`, `logger` and `event` (the message),
plus the context bound with `structlog.contextvars`: `request_id` and `principal` in a
request (`graph.telemetry.request_id`, `graph.telemetry.extensions`), `task_id` and
`worker_id` while a worker runs a task (`agents.runtime.execution.Executor.run`); a
traceback is `exception`. uvicorn's access lines also carry `client`, `method`, `path`
and `status_code`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from graph.telemetry import OWN_LOGGERS

#: uvicorn's loggers, shown at LOG_LEVEL like ours (its access log is one INFO line per
#: request); `uvicorn.run(log_config=None)` leaves them to this set-up.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: Loggers that keep a handler of their own unless they get this one (DBOS adds a
#: console handler to "dbos", not propagating, when it has none).
OWN_HANDLER_LOGGERS = ("dbos",)


def _access_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """uvicorn's access line as fields: its record's args are (client, method, path,
    http version, status code). Other records' args are dropped (already in `event`)."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if record is not None and record.name == "uvicorn.access":
        if isinstance(args, tuple) and len(args) == 5:
            event.update(client=args[0], method=args[1], path=args[2], status_code=args[4])
    return event


def _shared() -> list[Processor]:
    """What every line gets, the service's and the libraries' alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _access_fields,
    ]


def _tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def log_format(configured: str | None, stream: TextIO) -> str:
    """`configured` (LOG_FORMAT), or console when `stream` is a terminal, else json."""
    return configured or ("console" if _tty(stream) else "json")


def formatter(fmt: str, *, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The `logging.Formatter` rendering records as `fmt` (json, or console: with ANSI
    colours when `colors`)."""
    meta = structlog.stdlib.ProcessorFormatter.remove_processors_meta
    processors: list[Processor]
    if fmt == "json":
        processors = [
            meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors = [meta, structlog.dev.ConsoleRenderer(colors=colors)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(), processors=processors, pass_foreign_args=True
    )


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler this set-up installs (found again to be replaced)."""


def configure_logging(
    *, level: str = "info", fmt: str | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to `stream` (stderr) formatted as `fmt` (`log_format`):
    the service's own loggers (`OWN_LOGGERS`) and uvicorn's at `level` (LOG_LEVEL),
    libraries' at WARNING. Replaces the handler an earlier call installed; returns the
    new one (a test removes it with `remove_handler`)."""
    stream = stream or sys.stderr
    handler = _Handler(stream)
    chosen = log_format(fmt, stream)
    handler.setFormatter(formatter(chosen, colors=chosen == "console" and _tty(stream)))
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in (*OWN_LOGGERS, *UVICORN_LOGGERS):
        logging.getLogger(name).setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in OWN_HANDLER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not isinstance(h, _Handler)]
        logger.addHandler(handler)
        logger.propagate = False
    return handler


def remove_handler(handler: logging.Handler) -> None:
    """Take `handler` (from `configure_logging`) off every logger it was put on."""
    for name in ("", *OWN_HANDLER_LOGGERS):
        logging.getLogger(name).removeHandler(handler)


def bind(**fields: Any) -> None:
    """Bind `fields` to every later log line of this context (structlog contextvars)."""
    structlog.contextvars.bind_contextvars(**fields)
