"""`apex-ai-proxy import FILE`: the Cloudflare Worker's config, as an apex.yaml.

FILE is a v1 `wrangler-config.js` or a v2 `wrangler.jsonc` (with `--dev-vars`, or a `.dev.vars`
beside it, for the secrets' values). The YAML goes to `--out`; the secrets go to `--env-file`
(mode 0600) or, without it, to stdout as `export` lines. Then the result is validated as `check`
validates a config, with those secrets in the environment.

Exit status: 0 written and valid; 1 written but `check` found problems (listed); 2 nothing
written (unreadable or unusable input, or `--out` exists without `--force`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from apex_ai_proxy.config import ConfigError, load_config_file
from apex_ai_proxy.migrate import Migration, MigrationError, migrate
from apex_ai_proxy.migrate.writer import render_env, render_yaml, write_private


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("import", help="turn the Cloudflare Worker's config into an apex.yaml")
    cmd.add_argument("file", help="wrangler-config.js (v1) or wrangler.jsonc (v2)")
    cmd.add_argument("--dev-vars", help="the Worker's .dev.vars (default: the one beside FILE)")
    cmd.add_argument("--out", default="apex.yaml", help="where to write the config")
    cmd.add_argument("--env-file", help="write the secrets here instead of printing them")
    cmd.add_argument("--force", action="store_true", help="replace an existing --out")
    cmd.add_argument("--azure-resource", help="replaces `:name` in v1 Azure URLs")
    cmd.add_argument("--azure-api-version", help="api-version for Azure (default: 2024-10-21)")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = migrate(
            args.file,
            dev_vars=args.dev_vars or _beside(args.file, ".dev.vars"),
            azure_resource=args.azure_resource,
            azure_api_version=args.azure_api_version,
        )
    except MigrationError as err:
        return _fail(str(err))
    except Exception as exc:  # noqa: BLE001 - hostile input must end in a message, not a traceback
        return _fail(f"{args.file}: cannot be imported ({type(exc).__name__})")
    out = Path(args.out)
    if out.exists() and not args.force:
        return _fail(f"{out} exists; pass --force to replace it")
    try:
        out.write_text(render_yaml(plan, args.file), encoding="utf-8")
        if args.env_file:
            write_private(args.env_file, render_env(plan, exports=False))
    except OSError as exc:
        return _fail(f"cannot write ({exc.strerror})")
    print(f"wrote {out} ({plan.source_kind} Worker config)", file=sys.stderr)
    for note in plan.notes:
        print(f"  note: {note}", file=sys.stderr)
    if args.env_file:
        print(f"wrote the secrets to {args.env_file} (mode 0600)", file=sys.stderr)
    elif plan.env:
        print("secrets (not in the YAML); put them in the gateway's environment:", file=sys.stderr)
        sys.stdout.write(render_env(plan, exports=True))
    return _check(out, plan)


def _check(out: Path, plan: Migration) -> int:
    """`check` on the written file, with the imported secrets in the environment."""
    env = {**os.environ, **{name: value for name, value in plan.env.items() if value}}
    try:
        config = load_config_file(out, env)
    except ConfigError as err:
        print(f"check: {out} has {len(err.problems)} problem(s):", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for warning in config.warnings():
        print(f"check: warning: {warning}", file=sys.stderr)
    print(
        f"check: OK: {len(config.providers)} provider(s), {len(config.models)} model(s)",
        file=sys.stderr,
    )
    return 0


def _beside(file: str, name: str) -> str | None:
    candidate = Path(file).parent / name
    return str(candidate) if candidate.is_file() else None


def _fail(message: str) -> int:
    print(f"apex-ai-proxy import: {message}", file=sys.stderr)
    return 2
