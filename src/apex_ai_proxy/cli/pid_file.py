"""The pid file `serve` writes and `reload` reads: how `apex-ai-proxy reload` finds the gateway.

By default one file per config file, in the temporary directory, named after a digest of the
config's absolute path (or "environment"): `serve --config X` and `reload --config X` agree
without being told. Two gateways on one config file need `--pid-file` to be told apart. With
`--workers N` the file holds the launcher's pid, which passes SIGHUP on to every worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator

from apex_ai_proxy.config import find_config_path


def default_pid_file(cli_config: str | None) -> str:
    path = find_config_path(cli_config)
    where = os.path.abspath(path) if path else "environment"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"apex-ai-proxy-{digest}.pid")


@contextlib.contextmanager
def pid_file(path: str) -> Iterator[None]:
    """Write this process's pid for the duration; removed after, unless another took it over."""
    mine = str(os.getpid())
    with open(path, "w", encoding="ascii") as file:
        file.write(mine + "\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError), open(path, encoding="ascii") as file:
            if file.read().strip() == mine:
                os.remove(path)


def read_pid(path: str) -> int | None:
    """The pid in the file, or None when there is no file or no number in it."""
    try:
        with open(path, encoding="ascii") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None
