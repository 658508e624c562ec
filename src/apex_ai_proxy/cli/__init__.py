"""Command line: `apex-ai-proxy serve | check | reload | logs | stats | import | pool | keys`,
one module per command.

Each command module has `register(sub)`, which adds its subcommand to the parser, and `run(args)`,
which the parser calls with the parsed arguments and whose return value is the exit status.
"""

from __future__ import annotations

import argparse

from apex_ai_proxy.cli import check, import_config, keys, logs, pool, reload, serve, stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apex-ai-proxy", description="Self-hosted AI gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (serve, check, reload, logs, stats, import_config, pool, keys):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
