"""The `syncd` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
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
