"""`apex-ai-proxy serve`: run the gateway, in one process or N sharing the port."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apex_ai_proxy.cli.config_file import load_or_exit
from apex_ai_proxy.cli.pid_file import default_pid_file, pid_file
from apex_ai_proxy.config import Config

if TYPE_CHECKING:
    from apex_ai_proxy.health import CooldownTable

log = logging.getLogger("apex_ai_proxy")

# Builds the gateway from the config (and the shared cooldown table, with several workers).
AppFactory = Callable[..., Any]


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="config file (default: $APEX_CONFIG, then ./apex.yaml, then environment)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    serve.add_argument(
        "--pid-file",
        help="where `apex-ai-proxy reload` finds this process "
        "(default: one per config file, in the temporary directory)",
    )
    serve.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_or_exit(args.config)
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
    # Imported here, not at the top: `check`, `logs` and `stats` need not load the gateway.
    from apex_ai_proxy.app import create_app, started_message

    for warning in config.warnings():
        log.warning(warning)
    log.info(started_message(config, args.host, args.port))
    with pid_file(args.pid_file or default_pid_file(args.config)):
        if args.workers <= 1:
            _run_worker(create_app, config, args.host, args.port, reuse_port=False)
            return 0
        return _serve_workers(create_app, config, args.host, args.port, args.workers)


def _run_worker(
    create_app: AppFactory,
    config: Config,
    host: str,
    port: int,
    reuse_port: bool,
    health_table: CooldownTable | None = None,
) -> None:
    # A worker ignores SIGHUP until its gateway listens for it (the launcher's handler, which
    # a forked worker inherits, would pass it on to its siblings).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional on unsupported platforms
        pass
    asyncio.run(_serve_until_signalled(create_app, config, host, port, reuse_port, health_table))


async def _serve_until_signalled(
    create_app: AppFactory,
    config: Config,
    host: str,
    port: int,
    reuse_port: bool,
    health_table: CooldownTable | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting and drain within the grace period."""
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
    loop.add_signal_handler(signal.SIGHUP, app.reload_logged)  # see reload.py
    await stop.wait()
    log.info(
        "shutting down: draining requests in flight (up to %ss)", config.server.shutdown_grace_s
    )
    await app.stop()


def _serve_workers(
    create_app: AppFactory, config: Config, host: str, port: int, workers: int
) -> int:
    """N processes on one port (SO_REUSEPORT); signals are passed on and the parent waits.

    Metrics use prometheus-client's multiprocess mode so any worker's /metrics shows all of them.
    Key cooldowns and, with local state, the key pool's quota counts live in tables in shared
    memory, mapped here and inherited by every worker.
    """
    import tempfile

    from apex_ai_proxy.health import CooldownTable, table_names
    from apex_ai_proxy.keypool import shared_ledger
    from apex_ai_proxy.routing import Router
    from apex_ai_proxy.telemetry import mark_process_dead, prepare_multiprocess_dir

    prepare_multiprocess_dir(os.path.join(tempfile.gettempdir(), f"apex-metrics-{os.getpid()}"))
    health_table = CooldownTable(table_names(Router(config)), shared=True)
    shared_ledger.prepare()  # local quota state: one table the workers count in together
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []

    def forward(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signum)

    # Each worker reloads the file itself (SIGHUP passed on): the launcher keeps no gateway.
    # Set before the fork, so a SIGHUP that comes early does not end the launcher.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    procs += [
        ctx.Process(
            target=_run_worker,
            args=(create_app, config, host, port, True, health_table),
            daemon=False,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    codes = []
    for proc in procs:
        proc.join()
        codes.append(proc.exitcode or 0)
        if proc.pid:
            mark_process_dead(proc.pid)
    return 0 if all(code == 0 for code in codes) else 1
