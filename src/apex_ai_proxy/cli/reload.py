"""`apex-ai-proxy reload`: check the config, then tell the running gateway to apply it (SIGHUP).

The file is validated here first, exactly as `check` does: a bad file is reported and nothing
is signalled. The gateway validates it again when it reloads (the file may change in between)
and logs what changed, or the problems and that it keeps its previous config.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from apex_ai_proxy.cli.config_file import load_or_exit
from apex_ai_proxy.cli.pid_file import default_pid_file, read_pid


def register(sub: argparse._SubParsersAction) -> None:
    reload = sub.add_parser("reload", help="apply the config file to the running gateway")
    reload.add_argument("--config", help="the config file the gateway was started with")
    reload.add_argument("--pid-file", help="the gateway's pid file (serve --pid-file)")
    reload.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    load_or_exit(args.config)
    path = args.pid_file or default_pid_file(args.config)
    pid = read_pid(path)
    if pid is None:
        print(f"apex-ai-proxy: no running gateway found (no pid in {path})", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"apex-ai-proxy: the gateway in {path} (pid {pid}) is not running", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"apex-ai-proxy: not allowed to signal pid {pid} (from {path})", file=sys.stderr)
        return 1
    print(f"apex-ai-proxy: asked the gateway (pid {pid}) to reload; its log says what changed")
    return 0
