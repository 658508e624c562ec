"""`apex-ai-proxy stats`: per model and provider, requests, errors, latency, tokens, cost."""

from __future__ import annotations

import argparse
import sqlite3

from apex_ai_proxy.cli.records import add_records_args, existing_db, unreadable


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "stats", help="per model and provider: requests, errors, latency, tokens, cost"
    )
    add_records_args(cmd)
    cmd.add_argument(
        "--by", choices=("model", "key"), default="model", help="group by model or by key"
    )
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from apex_ai_proxy.telemetry import query

    db = existing_db(args)
    if db is None:
        return 1
    try:
        rows = query.stats(db, since=args.since, by=args.by)
    except sqlite3.Error as exc:
        return unreadable(db, exc)
    print(query.format_stats_table(rows, by=args.by))
    return 0
