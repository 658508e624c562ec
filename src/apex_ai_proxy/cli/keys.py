"""`apex-ai-proxy keys create|list|show|update|revoke|rotate`: virtual keys, in the store the
config names (`virtual_keys.store`). `create` and `rotate` print the key exactly once; nothing
else ever shows it (the store has only its hash). A running gateway sees a change within its
`virtual_keys.cache_ttl_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from apex_ai_proxy.cli.config_file import load_or_exit


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("keys", help="virtual keys: create, list, show, update, revoke, rotate")
    actions = cmd.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key (printed once)")
    create.add_argument("--name", required=True)
    _add_fields(create)
    listing = actions.add_parser("list", help="every key: name, id, prefix, limits, spend, state")
    show = actions.add_parser("show", help="one key, with its spend in the current period")
    show.add_argument("name")
    update = actions.add_parser("update", help="change a key's fields")
    update.add_argument("name")
    update.add_argument("--rename", dest="new_name", metavar="NAME")
    _add_fields(update)
    revoke = actions.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("name")
    rotate = actions.add_parser("rotate", help="a new key for the same entry (printed once)")
    rotate.add_argument("name")
    for parser in (create, listing, show, update, revoke, rotate):
        parser.add_argument("--config")
        parser.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(func=run)


def _add_fields(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--models", help="allowed models, comma-separated; '*': every model (the default)"
    )
    cmd.add_argument("--rpm", type=int)
    cmd.add_argument("--tpm", type=int)
    cmd.add_argument("--rpd", type=int)
    cmd.add_argument("--max-parallel", type=int)
    cmd.add_argument("--budget", type=float, metavar="USD")
    cmd.add_argument("--budget-period", choices=("1d", "7d", "30d", "never"))
    cmd.add_argument("--expires", help="30d, 12h or a date (2027-01-31)")
    cmd.add_argument("--metadata", action="append", metavar="K=V", help="repeatable")


def fields_of(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as the admin API's JSON (same checks: virtualkeys/fields.py)."""
    data: dict[str, Any] = {}
    name = getattr(args, "new_name", None) or (args.name if args.action == "create" else None)
    if name is not None:
        data["name"] = name
    if args.models is not None:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        data["models"] = None if models == ["*"] else models
    for flag in ("rpm", "tpm", "rpd", "max_parallel"):
        value = getattr(args, flag)
        if value is not None:
            data[flag] = None if value == 0 and args.action == "update" else value  # 0: unlimited
    for flag in ("budget", "budget_period", "expires"):
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    if args.metadata:
        meta = {}
        for pair in args.metadata:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"--metadata: expected K=V, got {pair[:40]!r}")
            meta[key] = value
        data["metadata"] = meta
    return data


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    if config.virtual_keys is None:
        print("apex-ai-proxy: the config has no virtual_keys section", file=sys.stderr)
        return 1
    from apex_ai_proxy.virtualkeys.backend import open_store
    from apex_ai_proxy.virtualkeys.store import StoreError

    store = open_store(config.virtual_keys.store)
    action = _ACTIONS[args.action]
    try:
        return asyncio.run(_closing(store, action(store, args)))
    except (ValueError, StoreError) as exc:
        print(f"apex-ai-proxy: {exc}", file=sys.stderr)
        return 1


async def _closing(store: Any, work: Awaitable[int]) -> int:
    try:
        return await work
    finally:
        await store.close()


async def _create(store: Any, args: argparse.Namespace) -> int:
    from apex_ai_proxy.virtualkeys import manage
    from apex_ai_proxy.virtualkeys.fields import fields_from_json

    entry, key = await manage.create(store, fields_from_json(fields_of(args)))
    _print_new(args, entry, key)
    return 0


async def _list(store: Any, args: argparse.Namespace) -> int:
    now = time.time()
    keys = [k.public(now) for k in await store.all()]
    if args.json:
        print(orjson.dumps(keys).decode())
        return 0
    header = ("NAME", "ID", "PREFIX", "STATE", "MODELS", "LIMITS", "BUDGET", "SPEND")
    rows = [header]
    for k in keys:
        limits = " ".join(
            f"{f}={k[f]}" for f in ("rpm", "tpm", "rpd", "max_parallel") if k[f] is not None
        )
        budget = "-" if k["budget"] is None else f"${k['budget']:g}/{k['budget_period']}"
        models = ",".join(k["models"]) if k["models"] is not None else "*"
        spend = f"${k['spend_total']:.4f}"
        rows.append(
            (k["name"], k["id"], k["prefix"], k["state"], models, limits or "-", budget, spend)
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _show(store: Any, args: argparse.Namespace) -> int:
    from apex_ai_proxy.virtualkeys import manage

    entry = await _found(store, args.name)
    now = time.time()
    shown = entry.public(now, await manage.period_spend(store, entry, now))
    print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _update(store: Any, args: argparse.Namespace) -> int:
    from apex_ai_proxy.virtualkeys import manage
    from apex_ai_proxy.virtualkeys.fields import fields_from_json

    entry = await _found(store, args.name)
    entry = await manage.update(store, entry, fields_from_json(fields_of(args)))
    print(orjson.dumps(entry.public(time.time()), option=orjson.OPT_INDENT_2).decode())
    return 0


async def _revoke(store: Any, args: argparse.Namespace) -> int:
    from apex_ai_proxy.virtualkeys import manage

    entry = await manage.revoke(store, await _found(store, args.name))
    print(f"revoked {entry.name} ({entry.id})")
    return 0


async def _rotate(store: Any, args: argparse.Namespace) -> int:
    from apex_ai_proxy.virtualkeys import manage

    entry, key = await manage.rotate(store, await _found(store, args.name))
    _print_new(args, entry, key)
    return 0


async def _found(store: Any, name: str) -> Any:
    from apex_ai_proxy.virtualkeys import manage

    entry = await manage.find(store, name)
    if entry is None:
        raise ValueError(f"no key named {name[:64]!r}")
    return entry


def _print_new(args: argparse.Namespace, entry: Any, key: str) -> None:
    if args.json:
        print(orjson.dumps({**entry.public(time.time()), "key": key}).decode())
        return
    print(key)
    print(f"# {entry.name} ({entry.id}): this key is shown once; store it now.", file=sys.stderr)


_ACTIONS: dict[str, Callable[[Any, argparse.Namespace], Awaitable[int]]] = {
    "create": _create,
    "list": _list,
    "show": _show,
    "update": _update,
    "revoke": _revoke,
    "rotate": _rotate,
}
