"""The command line's error boundary: every failure becomes one line on stderr and an exit code."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from typing import TextIO

# sysexits.h, plus 1 for a cycle that ran but failed and 130 for Ctrl-C.
EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78
EX_INTERRUPTED = 130
EX_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away


class Failure(Exception):
    """A failure the user can act on; the message says what is wrong and what to do."""

    exit_code = EX_FAILURE


class UsageError(Failure):
    """An argument that names something this deployment does not have."""

    exit_code = EX_USAGE


class Unavailable(Failure):
    """Something the command needs, such as a port, cannot be had."""

    exit_code = EX_UNAVAILABLE


def _rules() -> list[tuple[type[BaseException], int, str, str]]:
    """(exception type, exit code, what failed, what to do), first match wins."""
    from sqlalchemy import exc as sa_exc

    from connectors.core.errors import ConnectorError
    from graph.db import DatabaseError, DatabaseURLError
    from graph.lease import LeaseHeld, LeaseLost
    from syncd.authority.hrfeed import FeedError
    from syncd.config import ConfigError

    return [
        (KeyboardInterrupt, EX_INTERRUPTED, "interrupted", ""),
        (Failure, EX_FAILURE, "", ""),  # carries its own exit code and whole message
        (ConfigError, EX_CONFIG, "bad config", ""),
        (DatabaseURLError, EX_CONFIG, "bad config: database.url", ""),
        (
            LeaseHeld,
            EX_TEMPFAIL,
            "another syncd writes to this database",
            "stop it, or wait for its lease to expire",
        ),
        (LeaseLost, EX_TEMPFAIL, "stopped writing", "another syncd may have taken over"),
        (FeedError, EX_DATAERR, "the HR feed cannot be used", "fix the file it names"),
        (DatabaseError, EX_UNAVAILABLE, "database unavailable", ""),
        (sa_exc.OperationalError, EX_UNAVAILABLE, "database unavailable", ""),
        (sa_exc.InterfaceError, EX_UNAVAILABLE, "database unavailable", ""),
        (
            sa_exc.TimeoutError,
            EX_UNAVAILABLE,
            "database unavailable",
            "no connection to it came free in time; try again",
        ),
        (ConnectorError, EX_UNAVAILABLE, "vendor unavailable", "`syncd doctor` checks each one"),
    ]


def reason(error: OSError) -> str:
    """What the system said, without the library's wording around it."""
    return os.strerror(error.errno) if error.errno else str(error)


def _leaves(error: BaseException) -> Iterator[BaseException]:
    """The exceptions inside task-group exception groups, or the exception itself."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _one_line(error: BaseException) -> str:
    """The exception's message on one line, with any registered secret redacted."""
    from sqlalchemy import exc as sa_exc

    from connectors.core.redaction import redact_text

    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    text = " ".join(str(cause).split())
    return redact_text(text)


def broken_pipe(error: BaseException) -> bool:
    """Whether the failure is only that stdout's reader went away."""
    return all(isinstance(leaf, BrokenPipeError) for leaf in _leaves(error))


def explain(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line for an exception that reached the command line."""
    rules = _rules()
    leaves = list(_leaves(error))
    for kind, code, what, todo in rules:
        for leaf in leaves:
            if isinstance(leaf, kind):
                if isinstance(leaf, Failure):
                    return leaf.exit_code, f"syncd: {_one_line(leaf)}"
                line = ": ".join(part for part in ("syncd", what, _one_line(leaf)) if part)
                return code, f"{line} ({todo})" if todo else line
    first = leaves[0]
    return EX_SOFTWARE, (
        f"syncd: internal error: {type(first).__name__}: {_one_line(first)} "
        "(run with --debug for the traceback)"
    )


def report(error: BaseException, *, debug: bool, stream: TextIO | None = None) -> int:
    """Print the line for an exception (after its traceback with debug) and return the code."""
    output = sys.stderr if stream is None else stream
    if debug:
        traceback.print_exception(error, file=output)
    code, line = explain(error)
    output.write(line + "\n")
    output.flush()
    return code
