"""Writing an import: the apex.yaml text (secrets as `${VAR}`) and the secrets themselves."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml

from apex_ai_proxy.migrate.plan import Migration

PASSTHROUGH_NOTE = """\
# Passthrough (the Worker's X-APEX-AI-PROXY-PROVIDER mode) is off. The Worker forwarded to any
# host a client named; here only hosts on an allowlist can be reached, and a client needs a
# gateway token (in X-APEX-AI-PROXY-TOKEN) unless `open: true`. To turn it on, list the hosts:
# passthrough:
#   enabled: true
#   allow:
#     - host: zenmux.ai
"""


def render_yaml(plan: Migration, source: str) -> str:
    header = [f"# apex.yaml imported from the Worker's {plan.source_kind} config ({source})."]
    header += ["# Keys are ${VAR} references: their values are in the .env / export list."]
    header += [f"# NOTE: {note}" for note in plan.notes]
    parts = ["\n".join(header) + "\n"]
    for section, value in plan.config.items():
        parts.append(yaml.safe_dump({section: value}, sort_keys=False, allow_unicode=True))
    parts.append(PASSTHROUGH_NOTE)
    parts.extend(plan.commented)
    return "\n".join(parts)


_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+-]*$")


def render_env(plan: Migration, exports: bool) -> str:
    """`export NAME='value'` lines (for a shell) or `NAME=value` lines (a .env file)."""
    lines = []
    for name, value in plan.env.items():
        quoted = value if _PLAIN.match(value) else shlex.quote(value)
        lines.append(f"export {name}={quoted}" if exports else f"{name}={quoted}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_private(path: str | Path, text: str) -> None:
    """Create or replace `path` readable by its owner only: it holds keys."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
