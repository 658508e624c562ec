"""A fake aepipe on 127.0.0.1 that is as strict as the real one, and stricter where the real one
would lose data without saying so.

Checked like aepipe (src/index.ts, src/ingest.ts of github.com/loadchange/aepipe): the route
`POST /v1/{project}/{logstore}/{ingest|log}` (404 otherwise), names `^[a-zA-Z0-9_-]{1,64}$`
(400), `Authorization: Bearer {ADMIN_TOKEN}` split at the first space as aepipe splits it (401),
JSON (400), `points` / `logs` a non-empty array of at most 250 (400).
Stricter (aepipe would skip, ignore or silently truncate, so a sink doing it is broken): a point
without a non-empty string `event`, with unknown fields, more than 15 blobs or 20 doubles, a
non-string blob or non-number double, or blobs over Analytics Engine's 16 KB; a log entry
without a non-empty string `message`. Every refusal is also kept in `refused`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
POINT_FIELDS = {"event", "level", "blobs", "doubles", "payload", "ttl"}
BLOB_BYTES = 16 * 1024


@dataclass
class Aepipe:
    token: str
    base_url: str = ""
    # (path, body) of every accepted POST, in arrival order
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    fail_with: int | None = None  # answer every POST with this status (and `fail_text`)
    fail_text: str = ""
    hang: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def points(self, project: str, logstore: str) -> list[dict[str, Any]]:
        return self._items(f"/v1/{project}/{logstore}/ingest", "points")

    def logs(self, project: str, logstore: str) -> list[dict[str, Any]]:
        return self._items(f"/v1/{project}/{logstore}/log", "logs")

    def _items(self, path: str, key: str) -> list[dict[str, Any]]:
        return [item for p, body in self.posts if p == path for item in body[key]]


def _authorized(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, rest = header.partition(" ")
    return scheme == "Bearer" and rest.split(" ")[0] == token  # JS split(" ", 2)


def _point_problem(project: str, logstore: str, point: Any) -> str | None:
    if not isinstance(point, dict):
        return "a point is not an object"
    if unknown := set(point) - POINT_FIELDS:
        return f"unknown point fields {sorted(unknown)}"
    event, level = point.get("event"), point.get("level", "info")
    if not isinstance(event, str) or not event:
        return "a point without event"
    if not isinstance(level, str):
        return "level is not a string"
    blobs, doubles = point.get("blobs", []), point.get("doubles", [])
    if not isinstance(blobs, list) or len(blobs) > 15 or not all(isinstance(b, str) for b in blobs):
        return "blobs: at most 15 strings"
    numbers = all(isinstance(d, int | float) and not isinstance(d, bool) for d in doubles)
    if not isinstance(doubles, list) or len(doubles) > 20 or not numbers:
        return "doubles: at most 20 numbers"
    if "payload" in point and not isinstance(point["payload"], dict):
        return "payload is not an object"
    # blob1..blob5 are project, logstore, event, level and a 36-character D1 ref_id
    stored = [project, logstore, event, level, "0" * 36, *blobs]
    if sum(len(b.encode()) for b in stored) > BLOB_BYTES:
        return "blobs over 16 KB (Analytics Engine would truncate them)"
    return None


def _log_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "a log entry is not an object"
    message = entry.get("message")
    if not isinstance(message, str) or not message:
        return "a log entry without message"
    return None


async def _handle(service: Aepipe, release: asyncio.Event, request: web.Request) -> web.Response:
    service.arrived.set()
    if service.hang:
        await release.wait()

    def refuse(status: int, error: str) -> web.Response:
        service.refused.append((status, error))
        return web.json_response({"error": error}, status=status)

    if not _authorized(request.headers.get("Authorization"), service.token):
        return refuse(401, "unauthorized")
    project, logstore = request.match_info["project"], request.match_info["logstore"]
    action = request.match_info["action"]
    if action not in ("ingest", "log"):
        return refuse(404, "not found")
    if not NAME.match(project) or not NAME.match(logstore):
        return refuse(400, "invalid project or logstore name")
    if service.fail_with is not None:
        return web.Response(status=service.fail_with, text=service.fail_text)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return refuse(400, "invalid json")
    key = "points" if action == "ingest" else "logs"
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return refuse(400, f"{key} must be a non-empty array")
    if len(items) > 250:
        return refuse(400, f"max 250 {key} per request")
    for item in items:
        problem = _point_problem(project, logstore, item) if key == "points" else _log_problem(item)
        if problem:
            return refuse(400, problem)
    service.posts.append((request.path, body))
    return web.json_response({"ok": True, "written": len(items)})


@pytest.fixture(name="aepipe_service")
async def aepipe_service_fixture() -> AsyncIterator[Callable[..., Awaitable[Aepipe]]]:
    runners: list[web.AppRunner] = []
    releases: list[asyncio.Event] = []

    async def start(token: str = "aepipe-admin-token-0123", **behaviour: Any) -> Aepipe:
        service = Aepipe(token=token, **behaviour)
        release = asyncio.Event()
        releases.append(release)

        async def handle(request: web.Request) -> web.Response:
            return await _handle(service, release, request)

        async def elsewhere(request: web.Request) -> web.Response:
            service.refused.append((404, f"{request.method} {request.path}"))
            return web.json_response({"error": "not found"}, status=404)

        app = web.Application()
        app.router.add_post("/v1/{project}/{logstore}/{action}", handle)
        app.router.add_route("*", "/{tail:.*}", elsewhere)  # matched after the route above
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        service.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return service

    yield start
    for release in releases:
        release.set()
    for runner in runners:
        await runner.cleanup()
