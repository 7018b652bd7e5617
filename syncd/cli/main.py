"""The `syncd` command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import anyio

from syncd.boundary import EX_BROKEN_PIPE, EX_OK, EX_USAGE, broken_pipe, report

DEFAULT_CONFIG = Path("/etc/syncd/syncd.toml")
CONFIG_ENV = "SYNCD_CONFIG"
DEBUG_ENV = "SYNCD_DEBUG"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        """Say what is wrong and where the help is, then exit 2."""
        self.exit(EX_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


class _VendorsHelp(argparse.RawDescriptionHelpFormatter):
    """Help that ends with every simulated vendor and how it takes its credentials."""

    def format_help(self) -> str:
        """Add the vendor list (imported only when help is asked for)."""
        from connectors.sim.command import vendors_help

        self.add_text(vendors_help())
        return super().format_help()


def resolve_config(given: Path | None) -> Path:
    """--config, else $SYNCD_CONFIG, else /etc/syncd/syncd.toml; ConfigError if none exists."""
    from syncd.config import ConfigError

    if given is not None:
        return given
    from_env = os.environ.get(CONFIG_ENV)
    path, tried = (
        (Path(from_env), f"${CONFIG_ENV}={from_env}") if from_env else (DEFAULT_CONFIG, "")
    )
    if path.exists():
        return path
    tried = tried or f"--config not given, ${CONFIG_ENV} not set, {DEFAULT_CONFIG}"
    raise ConfigError(f"no config file ({tried} does not exist): pass --config FILE")


def _integer(text: str, low: int, high: int | None, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise argparse.ArgumentTypeError(f"{what} must be {bound}, not {value}")
    return value


def _port(text: str) -> int:
    return _integer(text, 0, 65535, "a port")


def _count(text: str) -> int:
    return _integer(text, 0, None, "a count")


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be {'above' if positive else 'at least'} 0")
    return value


def _rate(text: str) -> float:
    return _number(text, positive=True)


def _milliseconds(text: str) -> float:
    return _number(text, positive=False)


def _common(parser: argparse.ArgumentParser, *, log_level: str = "error") -> None:
    """The options every command takes: where logs stop, and tracebacks for bug reports."""
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=log_level, help="logs on stderr; %(default)s"
    )
    parser.add_argument(
        "--debug", action="store_true", help=f"show tracebacks (also ${DEBUG_ENV}=1)"
    )


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"the TOML config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )


def _db_upgrade(args: argparse.Namespace) -> int:
    """Apply every pending migration to the database the config names."""
    from graph.db import display_url, upgrade_database
    from syncd.config import load_config

    url = load_config(args.config).database.url
    anyio.run(upgrade_database, url)
    print(f"database is up to date: {display_url(url)}")
    return EX_OK


def _sim(args: argparse.Namespace) -> int:
    """Run one vendor simulator on 127.0.0.1 in the foreground until interrupted."""
    from connectors.sim.command import run_simulator

    return run_simulator(
        args.vendor,
        port=args.port,
        users=args.users,
        seed=args.seed,
        token=args.token,
        rate=args.rate,
        latency_ms=args.latency_ms,
    )


def _engine_command(args: argparse.Namespace) -> int:
    """Run one of the engine's operator commands against the config."""
    from syncd.cli.commands import run_command

    return run_command(args)


def _run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    from syncd.service.daemon import run_daemon

    return run_daemon(args.config)


def _demo(args: argparse.Namespace) -> int:
    """Play the demo story against in-process simulators."""
    from syncd.cli.demo import demo

    try:
        return demo(args.cycles, args.port)
    except KeyboardInterrupt:
        return EX_OK


def _add_engine_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    from syncd.cli.ops_args import add_arguments as add_ops_arguments
    from syncd.cli.ops_args import operation_id

    def command(name: str, help_text: str, *, json: bool = True) -> _Parser:
        parser = commands.add_parser(name, help=help_text)
        _config_option(parser)
        _common(parser)
        if json:
            parser.add_argument("--json", action="store_true", help="print data as JSON")
        parser.set_defaults(handler=_engine_command)
        return parser

    run = commands.add_parser("run", help="run the daemon (systemd service or container)")
    _config_option(run)
    _common(run, log_level="info")
    run.set_defaults(handler=_run)
    demo = commands.add_parser(
        "demo", help="five simulated vendors, an HR file, an IdP over SCIM and the daemon"
    )
    _common(demo)
    demo.add_argument("--cycles", type=_count, help="story rounds to play (default: until Ctrl-C)")
    demo.add_argument(
        "--port", type=_port, help="health port (default: 8080, or a free one if it is taken)"
    )
    demo.set_defaults(handler=_demo)
    once = command("once", "run one full cycle of every connector")
    once.add_argument("--connector", help="only this connector's listing and push")
    plan = command("plan", "show what a cycle would queue, writing nothing outward")
    plan.add_argument(
        "--all",
        action="store_true",
        help="plan everyone against every connector now and queue it (guards apply)",
    )
    for name, verb in (("approve", "release"), ("reject", "drop")):
        held = command(name, f"{verb} operations a guard held")
        held.add_argument("--connector", help="only this connector's")
        held.add_argument(
            "--id",
            type=operation_id,
            action="append",
            dest="ids",
            help="only this operation (repeat)",
        )
        held.add_argument("--person", metavar="EMAIL", help="only this person's")
    commands.choices["approve"].add_argument(
        "--authority",
        action="store_true",
        help="apply the refused HR feed (that exact file version) instead",
    )
    commands.choices["reject"].set_defaults(authority=False)
    command("status", "per-connector listing and outbox state")

    def ops_common(parser: argparse.ArgumentParser) -> None:
        _config_option(parser)
        _common(parser)
        parser.add_argument("--json", action="store_true", help="print data as JSON")

    add_ops_arguments(
        command("ops", "the outbox: list, show, retry or cancel operations"), ops_common
    )
    command("doctor", "check config, database and every vendor's credentials")
    command("person", "a person and their accounts").add_argument("email")
    command("conflicts", "open conflicts")
    orphans = command("orphans", "accounts that belong to nobody, with email and last seen")
    orphans.add_argument("--connector", help="only this connector's")
    link = command("link", "link an account to a person by hand", json=False)
    link.add_argument("connector")
    link.add_argument("external_id")
    link.add_argument("email")
    unlink = command("unlink", "detach an account from its person by hand", json=False)
    unlink.add_argument("connector")
    unlink.add_argument("external_id")


def _version() -> str:
    try:
        return f"syncd {version('syncd')}"
    except PackageNotFoundError:
        return "syncd (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = _Parser(prog="syncd", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    _config_option(upgrade)
    _common(upgrade)
    upgrade.set_defaults(handler=_db_upgrade)

    sim = commands.add_parser(
        "sim", help="run a vendor simulator on 127.0.0.1", formatter_class=_VendorsHelp
    )
    _common(sim)
    sim.add_argument("vendor", help="vendor name, e.g. example")
    sim.add_argument("--port", type=_port, default=8400, help="default %(default)s")
    sim.add_argument("--users", type=_count, default=100, help="seeded users; default %(default)s")
    sim.add_argument("--seed", type=int, default=0, help="seed for the users; default %(default)s")
    sim.add_argument("--token", help="the accepted API token (default: a random one, printed)")
    sim.add_argument("--rate", type=_rate, help="requests per second before 429 (default: none)")
    sim.add_argument("--latency-ms", type=_milliseconds, default=0.0, help="added to every request")
    sim.set_defaults(handler=_sim)
    _add_engine_commands(commands)
    from syncd.cli.audit import add_commands as add_audit_commands

    add_audit_commands(commands, _config_option, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit code."""
    from syncd.logging import configure_logging, reset_logging

    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV) == "1"
    configure_logging(level=args.log_level)
    try:
        if "config" in vars(args):
            args.config = resolve_config(args.config)
        return int(args.handler(args))
    except SystemExit:
        raise
    except BaseException as error:  # the boundary: one line and an exit code, never a traceback
        if broken_pipe(error):
            # The reader went away (`syncd status | head -1`): the usual quiet end of a filter.
            # Point stdout at /dev/null so the interpreter's last flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EX_BROKEN_PIPE
        return report(error, debug=debug)
    finally:
        reset_logging()


if __name__ == "__main__":
    sys.exit(main())
