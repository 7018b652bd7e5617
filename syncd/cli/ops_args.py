"""`syncd ops` arguments: kept apart so that building the parser imports no database code."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta

STATES = ("pending", "held", "in_flight", "done", "dead", "cancelled")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta:
    """A duration such as 90s, 30m, 12h, 7d or 2w; argparse's type for --since."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 12h or 7d")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def operation_id(text: str) -> int:
    """An operation id: a positive whole number."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an operation id")
    return int(text)


def add_arguments(
    ops: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `ops` command's filters and its show, retry and cancel subcommands."""
    ops.add_argument("--state", choices=STATES, action="append", help="only these states")
    ops.add_argument("--connector", help="only this connector's")
    ops.add_argument("--person", metavar="EMAIL", help="only this person's (any of their emails)")
    ops.add_argument("--since", type=duration, help="only changed within, e.g. 30m, 12h, 7d")
    actions = ops.add_subparsers(dest="ops_command", metavar="{show,retry,cancel}")
    show = actions.add_parser("show", help="one operation: payload and every attempt")
    show.add_argument("id", type=operation_id)
    retry = actions.add_parser("retry", help="put dead operations back in the queue")
    retry.add_argument("ids", type=operation_id, nargs="*", metavar="ID")
    retry.add_argument("--dead", action="store_true", help="every dead operation")
    retry.add_argument("--connector", help="with --dead: only this connector's")
    cancel = actions.add_parser("cancel", help="end pending, held or dead operations")
    cancel.add_argument("ids", type=operation_id, nargs="+", metavar="ID")
    for parser in (show, retry, cancel):
        common(parser)
