"""From the Cloudflare Worker to apex.yaml: `apex-ai-proxy import FILE` (cli/import_config.py).

    literals.py   find and parse the object literals of a v1 `wrangler-config.js` (JSON5)
    plan.py       Migration: the config tree with `${VAR}` references, the secrets apart, notes
    worker_v1.py  v1: `providerConfig` + `modelProviderConfig` → providers and models
    worker_v2.py  v2: `wrangler.jsonc` (+ `.dev.vars`) → the cloudflare provider, records, tokens
    writer.py     the YAML text (with comments) and the secrets as `export` lines or a .env file

Secrets never reach the YAML: every key becomes a `${NAME}` reference and its value is kept in
`Migration.env`, which only the env writer prints.
"""

from __future__ import annotations

from pathlib import Path

from apex_ai_proxy.migrate.literals import MAX_SOURCE_CHARS, LiteralError
from apex_ai_proxy.migrate.plan import Migration, MigrationError


def read_text(path: str | Path, what: str) -> str:
    """A source file's text, with the size limit and a clear error instead of an OSError."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_SOURCE_CHARS + 1)
    except OSError as exc:
        raise MigrationError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise MigrationError(f"{path}: {what} is not UTF-8 text") from None
    if len(text) > MAX_SOURCE_CHARS:
        raise MigrationError(f"{path}: {what} is larger than {MAX_SOURCE_CHARS} characters")
    return text


def migrate(
    path: str | Path,
    dev_vars: str | Path | None = None,
    azure_resource: str | None = None,
    azure_api_version: str | None = None,
) -> Migration:
    """Read a v1 `wrangler-config.js` or a v2 `wrangler.jsonc` and plan the equivalent config."""
    from apex_ai_proxy.migrate import worker_v1, worker_v2

    source = read_text(path, "the Worker config")
    extra = read_text(dev_vars, ".dev.vars") if dev_vars else None
    try:
        if worker_v1.looks_like_v1(source):
            return worker_v1.convert(source, azure_resource, azure_api_version)
        return worker_v2.convert(source, extra, azure_api_version)
    except LiteralError as exc:
        raise MigrationError(f"{path}: {exc}") from None


__all__ = ["Migration", "MigrationError", "migrate", "read_text"]
