"""Virtual keys over HTTP (the console and scripts use these; the CLI talks to the store):

    POST   /admin/keys                 create: same fields as `keys create`; answer holds the key once
    GET    /admin/keys                 every key (never the key itself)
    GET    /admin/keys/{id}            one key, with its current period's spend
    PATCH  /admin/keys/{id}            change the fields sent
    DELETE /admin/keys/{id}            revoke (the row stays, with its spend)
    POST   /admin/keys/{id}/rotate     a new key for the same entry; answer holds it once
    GET    /admin/keys/{id}/spend?since=   spend per day since a date, duration (7d) or epoch

{id} is a key's id (vk_…) or its name. Every change refreshes this replica's cache at once;
the others see it within `virtual_keys.cache_ttl_s`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.endpoints.intake import read_body
from apex_ai_proxy.errors import BadRequest, GatewayError, NotFound, StoreUnavailable
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services
from apex_ai_proxy.virtualkeys import manage
from apex_ai_proxy.virtualkeys.fields import fields_from_json, parse_since
from apex_ai_proxy.virtualkeys.guard import VirtualKeys
from apex_ai_proxy.virtualkeys.model import VirtualKey
from apex_ai_proxy.virtualkeys.store import DuplicateName, StoreError

MAX_BODY = 64 * 1024


def routes(services: Services) -> list[tuple[str, str, Handle]]:
    return [
        ("POST", "/admin/keys", _wrap(services, _create)),
        ("GET", "/admin/keys", _wrap(services, _list)),
        ("GET", "/admin/keys/{id}", _wrap(services, _show)),
        ("PATCH", "/admin/keys/{id}", _wrap(services, _update)),
        ("DELETE", "/admin/keys/{id}", _wrap(services, _revoke)),
        ("POST", "/admin/keys/{id}/rotate", _wrap(services, _rotate)),
        ("GET", "/admin/keys/{id}/spend", _wrap(services, _spend)),
    ]


def _wrap(services: Services, action: Any) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        vk = services.virtual_keys
        if vk is None:
            raise NotFound(
                "Virtual keys are off: configure virtual_keys to turn them on.",
                code="virtual_keys_off",
            )
        try:
            status, payload = await action(vk, request)
        except StoreError as exc:
            if isinstance(exc, DuplicateName):
                raise GatewayError(
                    "A key with this name already exists.",
                    status=409,
                    error_type="invalid_request_error",
                    code="name_taken",
                ) from None
            raise StoreUnavailable("The virtual key store is unavailable.") from None
        except (ValueError, manage.MissingName) as exc:
            raise BadRequest(str(exc)[:500]) from None
        resp = Response(status, orjson.dumps(payload), content_type="application/json")
        resp.headers["x-request-id"] = ctx.request_id
        resp.headers["cache-control"] = "no-store"
        return resp

    return handle


async def _json_body(request: Request) -> Any:
    raw = await read_body(request, MAX_BODY)
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise ValueError("the body is not valid JSON") from None


async def _entry(vk: VirtualKeys, request: Request) -> VirtualKey:
    ident = request.match_info["id"]
    found = await manage.find(vk.store, ident) if len(ident) <= 128 else None
    if found is None:
        raise NotFound("No virtual key with this id or name.", code="key_not_found")
    return found


async def _refreshed(vk: VirtualKeys) -> None:
    with contextlib.suppress(StoreError):  # else the loop tries again within the TTL
        await vk.cache.refresh()  # this replica sees the change at once


async def _create(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    fields = fields_from_json(await _json_body(request))
    entry, key = await manage.create(vk.store, fields)
    await _refreshed(vk)
    return 201, {**entry.public(time.time(), 0.0), "key": key}


async def _list(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    now = time.time()
    keys = await vk.store.all()
    return 200, {"object": "list", "data": [k.public(now) for k in keys]}


async def _show(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    entry = await _entry(vk, request)
    now = time.time()
    return 200, entry.public(now, await manage.period_spend(vk.store, entry, now))


async def _update(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    entry = await _entry(vk, request)
    fields = fields_from_json(await _json_body(request))
    entry = await manage.update(vk.store, entry, fields)
    await _refreshed(vk)
    return 200, entry.public(time.time())


async def _revoke(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    entry = await manage.revoke(vk.store, await _entry(vk, request))
    await _refreshed(vk)
    return 200, entry.public(time.time())


async def _rotate(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    entry, key = await manage.rotate(vk.store, await _entry(vk, request))
    await _refreshed(vk)
    return 200, {**entry.public(time.time()), "key": key}


async def _spend(vk: VirtualKeys, request: Request) -> tuple[int, dict]:
    entry = await _entry(vk, request)
    since = parse_since(request.query.get("since"))
    return 200, await manage.spend_since(vk.store, entry, since)
