"""Structured logs: JSON lines off a TTY, console lines on one, secrets always redacted."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import Processor

from connectors.core.redaction import redact_secrets

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# SQL statements, their parameters and result rows carry emails: these loggers never go
# below warning, whatever level the command runs at.
QUIET = ("sqlalchemy", "aiosqlite", "asyncpg", "alembic")

# The root handler this module installed, and the root level it replaced.
_installed: tuple[logging.Handler, int] | None = None


def _dumps(event: Any, **options: Any) -> str:
    """Serialize one event dict as a JSON line with orjson."""
    return orjson.dumps(
        event, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS
    ).decode()


def _shared_processors() -> list[Processor]:
    """The steps every event takes, ours and the standard library's, before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        # Last before rendering, so tracebacks and foreign messages are redacted too.
        redact_secrets,
    ]


def _level(name: str) -> int:
    """The numeric level for a level name; ValueError names the known ones."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (known: {', '.join(LEVELS)})") from None


def configure_logging(
    *, json: bool | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """Send structlog and standard-library logs to stderr, filtered, redacted, rendered."""
    global _installed
    output = sys.stderr if stream is None else stream
    threshold = _level(level)
    as_json = not output.isatty() if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=output.isatty())
    )
    shared = _shared_processors()
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    previous_level = root.level
    if _installed is not None:
        root.removeHandler(_installed[0])
        previous_level = _installed[1]
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    _installed = (handler, previous_level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached, so that a later configure_logging (or a test's) takes effect everywhere.
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Undo configure_logging: structlog's defaults, the root logger as it was."""
    global _installed
    structlog.reset_defaults()
    if _installed is not None:
        handler, previous_level = _installed
        root = logging.getLogger()
        root.removeHandler(handler)
        root.setLevel(previous_level)
        _installed = None
