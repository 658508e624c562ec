"""Command line: `apex-ai-proxy serve | check | logs | stats`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import multiprocessing
import os
import signal
import sqlite3
import sys
from typing import TYPE_CHECKING

from apex_ai_proxy.config import Config, ConfigError, find_config_path, load_config

if TYPE_CHECKING:
    from apex_ai_proxy.health import CooldownTable

log = logging.getLogger("apex_ai_proxy")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_or_exit(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        where = find_config_path(path) or "environment"
        print(
            f"apex-ai-proxy: the configuration ({where}) has {len(err.problems)} problem(s):",
            file=sys.stderr,
        )
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.config)
    print(
        f"OK: {config.source or 'environment'}: {len(config.providers)} provider(s), {len(config.models)} model(s)"
    )
    return 0


def _run_worker(
    config: Config,
    host: str,
    port: int,
    reuse_port: bool,
    health_table: CooldownTable | None = None,
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional on unsupported platforms
        pass
    asyncio.run(_serve_until_signalled(config, host, port, reuse_port, health_table))


async def _serve_until_signalled(
    config: Config,
    host: str,
    port: int,
    reuse_port: bool,
    health_table: CooldownTable | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting and drain within the grace period."""
    from apex_ai_proxy.app import create_app

    app = create_app(config, health_table)
    await app.start(host, port, reuse_port=reuse_port)
    # Everything built so far (config, routes, imported modules) lives as long as the process:
    # take it out of the collector's reach so that full collections stay short (tail latency).
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info(
        "shutting down: draining requests in flight (up to %ss)", config.server.shutdown_grace_s
    )
    await app.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = _load_or_exit(args.config)
    if not config.gateway_tokens:
        if not _is_loopback(args.host):
            print(
                f"apex-ai-proxy: refusing to listen on {args.host} without gateway_tokens: anyone who can "
                "reach it could spend your provider keys. Set gateway_tokens or bind to 127.0.0.1.",
                file=sys.stderr,
            )
            return 2
        log.warning(
            "no gateway_tokens configured: serving on loopback only, without authentication"
        )
    from apex_ai_proxy.app import started_message

    for warning in config.warnings():
        log.warning(warning)
    log.info(started_message(config, args.host, args.port))
    if args.workers <= 1:
        _run_worker(config, args.host, args.port, reuse_port=False)
        return 0
    return _serve_workers(config, args.host, args.port, args.workers)


def _serve_workers(config: Config, host: str, port: int, workers: int) -> int:
    """N processes on one port (SO_REUSEPORT); signals are passed on and the parent waits.

    Metrics use prometheus-client's multiprocess mode so any worker's /metrics shows all of them.
    Key cooldowns live in a table in shared memory, mapped here and inherited by every worker.
    """
    import tempfile

    from apex_ai_proxy.health import CooldownTable, unit_names
    from apex_ai_proxy.routing import Router
    from apex_ai_proxy.telemetry import mark_process_dead, prepare_multiprocess_dir

    prepare_multiprocess_dir(os.path.join(tempfile.gettempdir(), f"apex-metrics-{os.getpid()}"))
    health_table = CooldownTable(unit_names(Router(config)), shared=True)
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_run_worker, args=(config, host, port, True, health_table), daemon=False)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = []
    for proc in procs:
        proc.join()
        codes.append(proc.exitcode or 0)
        if proc.pid:
            mark_process_dead(proc.pid)
    return 0 if all(code == 0 for code in codes) else 1


def _records_db(args: argparse.Namespace) -> str:
    """The SQLite records file: --db, else the config's first sqlite sink."""
    if args.db:
        return args.db
    config = _load_or_exit(args.config)
    for sink in config.records.sinks:
        if sink.type == "sqlite":
            return str(sink.path)
    print("apex-ai-proxy: the config has no sqlite records sink; pass --db PATH", file=sys.stderr)
    raise SystemExit(1)


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


def _since_arg(value: str) -> str:
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


def _unreadable(db: str, exc: sqlite3.Error) -> int:
    """A file that is not a records database (or a damaged one): say so, exit 1."""
    print(f"apex-ai-proxy: cannot read records from {db}: {exc}", file=sys.stderr)
    return 1


def cmd_logs(args: argparse.Namespace) -> int:
    from apex_ai_proxy.telemetry import query

    db = _records_db(args)
    status = _status_filter(args.status)
    if not os.path.exists(db):
        print(f"apex-ai-proxy: no records yet ({db} does not exist)", file=sys.stderr)
        return 1
    try:
        if args.follow:
            for record in query.follow_records(
                db, model=args.model, provider=args.provider, status=status, backlog=args.limit
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
        )
    except KeyboardInterrupt:
        return 0
    except sqlite3.Error as exc:
        return _unreadable(db, exc)
    print(query.format_records_table(records))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from apex_ai_proxy.telemetry import query

    db = _records_db(args)
    if not os.path.exists(db):
        print(f"apex-ai-proxy: no records yet ({db} does not exist)", file=sys.stderr)
        return 1
    try:
        rows = query.stats(db, since=args.since)
    except sqlite3.Error as exc:
        return _unreadable(db, exc)
    print(query.format_stats_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apex-ai-proxy", description="Self-hosted AI gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="config file (default: $APEX_CONFIG, then ./apex.yaml, then environment)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check", help="validate the config and list every problem")
    check.add_argument("--config")
    check.set_defaults(func=cmd_check)
    for name, func, text in (
        ("logs", cmd_logs, "recent request records"),
        ("stats", cmd_stats, "per model and provider: requests, errors, latency, tokens, cost"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--config")
        cmd.add_argument("--db", help="records SQLite file (default: the config's sqlite sink)")
        cmd.add_argument(
            "--since",
            type=_since_arg,
            help="only records newer than this: 90s, 15m, 2h, 7d or epoch seconds",
        )
        if name == "logs":
            cmd.add_argument("--model")
            cmd.add_argument("--provider")
            cmd.add_argument(
                "--status", type=_status_arg, help="a status (429), a class (4xx) or 'error'"
            )
            cmd.add_argument("--limit", type=_positive_int, default=50)
            cmd.add_argument(
                "--follow", "-f", action="store_true", help="keep printing new records"
            )
        cmd.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
