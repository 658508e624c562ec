"""`apex-ai-proxy check`: validate the config and list every problem."""

from __future__ import annotations

import argparse

from apex_ai_proxy.cli.config_file import load_or_exit


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check", help="validate the config and list every problem")
    check.add_argument("--config")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    print(
        f"OK: {config.source or 'environment'}: {len(config.providers)} provider(s), {len(config.models)} model(s)"
    )
    return 0
