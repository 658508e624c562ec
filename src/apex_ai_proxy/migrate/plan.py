"""What an import produces before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_AZURE_API_VERSION = "2024-10-21"  # the GA version current when the Worker was written


class MigrationError(Exception):
    """The Worker config cannot be imported; the message says why (and never quotes a key)."""


@dataclass
class Migration:
    source_kind: str  # "v1" | "v2"
    config: dict[str, Any] = field(default_factory=dict)  # the apex.yaml tree, ${VAR} for secrets
    env: dict[str, str] = field(default_factory=dict)  # VAR -> value ("" when unknown)
    notes: list[str] = field(default_factory=list)  # said to the user, written as comments
    commented: list[str] = field(default_factory=list)  # YAML blocks written commented out

    def secret(self, name: str, value: object) -> str:
        """Keep `value` under an unused variable name derived from `name`; its `${…}` reference."""
        var = env_name(name)
        base, n = var, 2
        while var in self.env and self.env[var] != value:
            var, n = f"{base}_{n}", n + 1
        self.env[var] = value if isinstance(value, str) else ""
        return "${" + var + "}"


def env_name(*parts: str) -> str:
    """`aliyuncs`, `api key` → ALIYUNCS_API_KEY: letters, digits and underscores only."""
    joined = "_".join(p for p in parts if p)
    name = re.sub(r"[^A-Za-z0-9]+", "_", joined).strip("_").upper() or "SECRET"
    return name if not name[0].isdigit() else "_" + name


def plain(value: str, where: str) -> str:
    """A value written into the YAML as is: `${` in it would be read as a variable reference."""
    if "${" in value:
        raise MigrationError(f"{where}: contains '${{', which apex.yaml would read as a variable")
    return value
