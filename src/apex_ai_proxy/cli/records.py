"""What `logs` and `stats` share: finding the records database, --since, read errors."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from apex_ai_proxy.cli.config_file import load_or_exit


def add_records_args(cmd: argparse.ArgumentParser) -> None:
    """--config, --db and --since: how both commands find and window the records."""
    cmd.add_argument("--config")
    cmd.add_argument("--db", help="records SQLite file (default: the config's sqlite sink)")
    cmd.add_argument(
        "--since",
        type=since_arg,
        help="only records newer than this: 90s, 15m, 2h, 7d or epoch seconds",
    )


def records_db(args: argparse.Namespace) -> str:
    """The SQLite records file: --db, else the config's first sqlite sink."""
    if args.db:
        return args.db
    config = load_or_exit(args.config)
    for sink in config.records.sinks:
        if sink.type == "sqlite":
            return str(sink.path)
    print("apex-ai-proxy: the config has no sqlite records sink; pass --db PATH", file=sys.stderr)
    raise SystemExit(1)


def existing_db(args: argparse.Namespace) -> str | None:
    """The records file if it exists; else say there are no records yet and give None."""
    db = records_db(args)
    if not os.path.exists(db):
        print(f"apex-ai-proxy: no records yet ({db} does not exist)", file=sys.stderr)
        return None
    return db


def since_arg(value: str) -> str:
    """--since: checked here so a typo is a usage error, not a traceback."""
    from apex_ai_proxy.telemetry.query import parse_since

    try:
        start = parse_since(value)
    except ValueError:
        start = None
    if start is None or start != start:  # NaN
        raise argparse.ArgumentTypeError(
            f"expected 90s, 15m, 2h, 7d or epoch seconds, got {value[:40]!r}"
        )
    return value


def unreadable(db: str, exc: sqlite3.Error) -> int:
    """A file that is not a records database (or a damaged one): say so, exit 1."""
    print(f"apex-ai-proxy: cannot read records from {db}: {exc}", file=sys.stderr)
    return 1
