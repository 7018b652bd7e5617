"""Log configuration: JSON lines, redaction, level filtering, stderr, console on a TTY."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import structlog

from connectors.core.redaction import REDACTED, register_secret
from syncd.logging import configure_logging, reset_logging

SECRET = "s3cret-logging-token-9876"


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    """Leave structlog and the root logger as the other tests expect them."""
    try:
        yield
    finally:
        reset_logging()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line]


def test_json_lines_parse_with_iso_utc_timestamps_and_names() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = structlog.get_logger("syncd.test", connector="influitive")
    with structlog.contextvars.bound_contextvars(cycle=7):
        log.info("cycle.finished", accounts=250, counts={1: "one"})

    [line] = _lines(stream)
    assert line["event"] == "cycle.finished"
    assert line["level"] == "info"
    assert line["logger"] == "syncd.test"
    assert line["connector"] == "influitive"
    assert line["cycle"] == 7
    assert line["accounts"] == 250
    assert line["counts"] == {"1": "one"}
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)


def test_registered_secrets_never_reach_the_output() -> None:
    register_secret(SECRET)
    stream = io.StringIO()
    configure_logging(stream=stream, json=True)
    log = structlog.get_logger("syncd.test")
    log.warning("connector.parked", detail=f"token {SECRET} refused", api_key="unregistered")
    try:
        raise RuntimeError(f"auth failed with {SECRET}")
    except RuntimeError:
        log.exception("connector.crashed")
    logging.getLogger("aiohttp.client").warning("retrying with %s", SECRET)

    assert SECRET not in stream.getvalue()
    parked, crashed, foreign = _lines(stream)
    assert parked["detail"] == f"token {REDACTED} refused"
    assert parked["api_key"] == REDACTED
    assert "RuntimeError" in crashed["exception"]
    assert REDACTED in crashed["exception"]
    assert foreign["event"] == f"retrying with {REDACTED}"
    assert foreign["logger"] == "aiohttp.client"


def test_level_filtering_applies_to_ours_and_the_standard_library() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, level="WARNING")
    log = structlog.get_logger("syncd.test")
    log.debug("cycle.debug")
    log.info("cycle.started")
    log.warning("listing.shrank")
    logging.getLogger("aiohttp.access").info("GET /livez 200")
    logging.getLogger("asyncio").error("Task exception was never retrieved")

    assert [line["event"] for line in _lines(stream)] == [
        "listing.shrank",
        "Task exception was never retrieved",
    ]


def test_debug_level_lets_debug_through() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, level="debug")
    structlog.get_logger("syncd.test").debug("budget.probe")
    assert [line["event"] for line in _lines(stream)] == ["budget.probe"]


def test_an_unknown_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging(level="loud")


def test_console_lines_on_a_tty() -> None:
    register_secret(SECRET)
    stream = _Tty()
    configure_logging(stream=stream)
    structlog.get_logger("syncd.test").info("cycle.finished", note=SECRET)
    text = stream.getvalue()
    assert "cycle.finished" in text
    assert SECRET not in text
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)


def test_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    structlog.get_logger("syncd.test").info("daemon.started")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert orjson.loads(captured.err.splitlines()[-1])["event"] == "daemon.started"


def test_reconfiguring_replaces_the_handler_and_reset_restores_the_root() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    structlog.get_logger("syncd.test").info("daemon.started")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1
    reset_logging()
    assert root.level == level
    assert root.handlers == handlers
