"""Hot reload: the config file read again and applied to the running gateway, between requests.

    SIGHUP, `apex-ai-proxy reload`, POST /admin/reload
        └─► read_config: validated exactly as `check` does; a bad file raises ReloadRefused
            with check's lines, and the running config stays
        └─► restart_sections: what only a restart can change keeps its running value
        └─► Services(new config, previous=running) + carry_over: routing state built anew,
            key state (cooldowns, in-flight counts, …) kept for the keys that stayed
        └─► App swaps its route table in one step (app.py): requests and streams in flight
            finish on the objects they started with; the next request sees the new config

What needs a restart (the running value is kept and the answer says so): `server` (the listener
and its limits are built once), `records` (the sinks), `responses_store`, `passthrough` (its
client), `health` and `state` (the shared backends), `virtual_keys` (the key store, its cache
and the limits' ledger; keys themselves change through `keys …` and /admin/keys, no reload
needed). The listen address and `--workers` are
command-line options, so a reload never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apex_ai_proxy.config import Config, ConfigError, config_from_env, load_config_file
from apex_ai_proxy.health import same_units
from apex_ai_proxy.routing import Router

RESTART_SECTIONS = (
    "server",
    "records",
    "responses_store",
    "passthrough",
    "health",
    "state",
    "virtual_keys",
)


class ReloadRefused(Exception):
    """The new config is not valid: `lines` are what `check` prints for it (no secrets: the
    problems name paths and kinds, never values)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.problems = [line.strip() for line in lines[1:]]


@dataclass
class ReloadChanges:
    """What a reload changed, by name only: keys as their unit names ("provider#1")."""

    providers_added: list[str] = field(default_factory=list)
    providers_removed: list[str] = field(default_factory=list)
    providers_changed: list[str] = field(default_factory=list)
    models_added: list[str] = field(default_factory=list)
    models_removed: list[str] = field(default_factory=list)
    models_changed: list[str] = field(default_factory=list)
    keys_added: list[str] = field(default_factory=list)
    keys_removed: list[str] = field(default_factory=list)
    other_changed: list[str] = field(default_factory=list)  # applied: tokens, retry, mapping
    needs_restart: list[str] = field(default_factory=list)  # not applied: RESTART_SECTIONS
    #: Keys added in a `--workers N` gateway: their cooldowns stay per worker until a restart.
    keys_not_shared: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, list[str]]:
        return dict(self.__dict__)

    def summary(self) -> str:
        parts = [
            f"{name.replace('_', ' ')}: {', '.join(v)}" for name, v in self.__dict__.items() if v
        ]
        return "; ".join(parts) or "nothing changed"


def read_config(source: str) -> Config:
    """The config from where the process read it at start (`Config.source`): a file, or the
    environment. Raises ReloadRefused with check's lines."""
    try:
        if source in ("", "environment"):
            return config_from_env()
        return load_config_file(source)
    except ConfigError as err:
        raise ReloadRefused(err.report(source or "environment")) from None


def restart_sections(running: Config, new: Config) -> tuple[Config, list[str]]:
    """`new` with the running value of every section only a restart applies, and the names of
    those that differ (they are reported, not applied)."""
    differ = [name for name in RESTART_SECTIONS if getattr(running, name) != getattr(new, name)]
    kept = {name: getattr(running, name) for name in RESTART_SECTIONS}
    return new.model_copy(update=kept), differ


def describe(old: Config, new: Config, old_router: Router, new_router: Router) -> ReloadChanges:
    changes = ReloadChanges()
    _compare(old.providers, new.providers, changes.providers_added, changes.providers_removed,
             changes.providers_changed)  # fmt: skip
    _compare(old.models, new.models, changes.models_added, changes.models_removed,
             changes.models_changed)  # fmt: skip
    same = same_units(old_router, new_router)
    changes.keys_added = sorted(name for name, was in same.items() if was is None)
    kept = {was for was in same.values() if was is not None}
    changes.keys_removed = sorted(set(same_units(new_router, old_router)) - kept)
    for name in ("gateway_tokens", "admin_tokens", "retry", "model_mapping"):
        if getattr(old, name) != getattr(new, name):
            changes.other_changed.append(name)
    return changes


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    added: list[str],
    removed: list[str],
    changed: list[str],
) -> None:
    added += sorted(set(new) - set(old))
    removed += sorted(set(old) - set(new))
    changed += sorted(name for name in set(old) & set(new) if old[name] != new[name])
