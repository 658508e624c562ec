"""Loading the config for a command: every problem listed on stderr, then exit 1."""

from __future__ import annotations

import sys

from apex_ai_proxy.config import Config, ConfigError, find_config_path, load_config


def load_or_exit(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        where = find_config_path(path) or "environment"
        for line in err.report(where):
            print(line, file=sys.stderr)
        raise SystemExit(1) from None
