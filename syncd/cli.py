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
