"""`apex-ai-proxy logs`: recent request records as a table, optionally followed."""

from __future__ import annotations

import argparse
import sqlite3

from apex_ai_proxy.cli.records import add_records_args, existing_db, unreadable


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("logs", help="recent request records")
    add_records_args(cmd)
    cmd.add_argument("--model")
    cmd.add_argument("--provider")
    cmd.add_argument("--key", help="a virtual key's name (or a gateway token's, token-N)")
    cmd.add_argument("--status", type=_status_arg, help="a status (429), a class (4xx) or 'error'")
    cmd.add_argument("--limit", type=_positive_int, default=50)
    cmd.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    cmd.set_defaults(func=run)


def _status_filter(value: str | None) -> int | str | None:
    return int(value) if value and value.isdigit() else value


def _status_arg(value: str) -> str:
    """--status: 429, 4xx or error; anything else is a usage error, not a traceback."""
    text = value.strip().lower()
    if text == "error" or (text.isascii() and text.isdigit() and len(text) == 3):
        return text
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        return text
    raise argparse.ArgumentTypeError(
        f"expected a status (429), a class (4xx) or 'error', got {value[:40]!r}"
    )


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {value[:40]!r}"
        )
    return number


def run(args: argparse.Namespace) -> int:
    from apex_ai_proxy.telemetry import query

    db = existing_db(args)
    if db is None:
        return 1
    status = _status_filter(args.status)
    try:
        if args.follow:
            for record in query.follow_records(
                db,
                model=args.model,
                provider=args.provider,
                status=status,
                backlog=args.limit,
                key=args.key,
            ):
                print(query.format_records_table([record]).splitlines()[-1], flush=True)
            return 0
        records = query.recent_records(
            db,
            model=args.model,
            provider=args.provider,
            status=status,
            since=args.since,
            limit=args.limit,
            key=args.key,
        )
    except KeyboardInterrupt:
        return 0
    except sqlite3.Error as exc:
        return unreadable(db, exc)
    print(query.format_records_table(records))
    return 0
