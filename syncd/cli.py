"""The `syncd` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75
EXIT_CONFIG = 78


def _db_upgrade(args: argparse.Namespace) -> int:
    """Apply every pending migration to the database at --database."""
    from graph.db import upgrade_database

    anyio.run(upgrade_database, args.database)
    print(f"database is up to date: {args.database_display}")
    return EXIT_OK


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
    """Run one of the engine's operator commands against --config."""
    from connectors.errors import ConnectorError
    from graph.db import DatabaseError
    from graph.lease import LeaseHeld, LeaseLost
    from syncd.commands import run_command
    from syncd.config import ConfigError
    from syncd.logging import configure_logging

    configure_logging(level="warning")  # results own stdout; warnings and errors go to stderr
    try:
        return run_command(args)
    except ConfigError as exc:
        print(f"syncd: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (LeaseHeld, LeaseLost) as exc:
        return _lease_failure(args.command, exc)
    except (DatabaseError, ConnectorError, OSError) as exc:
        print(f"syncd {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _lease_failure(command: str, exc: Exception) -> int:
    """One line for a writer that may not write: another holds the lease, or it was lost."""
    from graph.lease import LeaseHeld

    if isinstance(exc, LeaseHeld):
        print(
            f"syncd {command}: another syncd writes to this database: {exc}; "
            "stop it, or wait for its lease to expire",
            file=sys.stderr,
        )
    else:
        print(f"syncd {command}: {exc}", file=sys.stderr)
    return EXIT_TEMPFAIL


def _run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    from graph.lease import LeaseHeld, LeaseLost
    from syncd.config import ConfigError
    from syncd.daemon import run_daemon
    from syncd.logging import configure_logging

    configure_logging(level=args.log_level)
    try:
        return run_daemon(args.config)
    except ConfigError as exc:
        print(f"syncd: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (LeaseHeld, LeaseLost) as exc:
        return _lease_failure(args.command, exc)


def _demo(args: argparse.Namespace) -> int:
    """Play the demo story against in-process simulators."""
    from syncd.demo import demo

    try:
        return demo(args.cycles, args.port)
    except KeyboardInterrupt:
        return EXIT_OK


def _add_engine_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def command(name: str, help_text: str, *, json: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", type=Path, required=True, help="the TOML config file")
        if json:
            parser.add_argument("--json", action="store_true", help="print data as JSON")
        parser.set_defaults(handler=_engine_command)
        return parser

    run = commands.add_parser("run", help="run the daemon (systemd service or container)")
    run.add_argument("--config", type=Path, required=True, help="the TOML config file")
    run.add_argument("--log-level", default="info", help="default %(default)s")
    run.set_defaults(handler=_run)
    demo = commands.add_parser("demo", help="five simulated vendors, an HR file and the daemon")
    demo.add_argument("--cycles", type=int, help="story rounds to play (default: until Ctrl-C)")
    demo.add_argument("--port", type=int, default=8080, help="health port; default %(default)s")
    demo.set_defaults(handler=_demo)
    command("once", "run one full cycle of every connector")
    command("plan", "show what a cycle would queue, writing nothing outward")
    for name, verb in (("approve", "release"), ("reject", "drop")):
        held = command(name, f"{verb} operations a guard held")
        held.add_argument("--connector", help="only this connector's")
    command("status", "per-connector listing and outbox state")
    command("doctor", "check config, database and every vendor's credentials")
    command("person", "a person and their accounts").add_argument("email")
    command("conflicts", "open conflicts")
    link = command("link", "link an account to a person by hand", json=False)
    link.add_argument("connector")
    link.add_argument("external_id")
    link.add_argument("email")
    unlink = command("unlink", "detach an account from its person by hand", json=False)
    unlink.add_argument("connector")
    unlink.add_argument("external_id")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="syncd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument(
        "--database",
        default="sqlite:///syncd.db",
        help="database URL (sqlite:///PATH or postgresql://...); default %(default)s",
    )
    upgrade.set_defaults(handler=_db_upgrade)

    sim = commands.add_parser("sim", help="run a vendor simulator on 127.0.0.1")
    sim.add_argument("vendor", help="vendor name, e.g. example")
    sim.add_argument("--port", type=int, default=8400, help="default %(default)s")
    sim.add_argument("--users", type=int, default=100, help="seeded users; default %(default)s")
    sim.add_argument("--seed", type=int, default=0, help="seed for the users; default %(default)s")
    sim.add_argument("--token", help="the accepted API token (default: a random one, printed)")
    sim.add_argument("--rate", type=float, help="requests per second before 429 (default: none)")
    sim.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    sim.set_defaults(handler=_sim)
    _add_engine_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "database"):
        from graph.db import display_url

        args.database_display = display_url(args.database)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
