"""Fixtures for the telemetry tests: a record factory and a fake log service on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from records_helpers import LogService, build_record

from apex_ai_proxy.telemetry import RequestRecord


@pytest.fixture
def make_record() -> Callable[..., RequestRecord]:
    return build_record


@pytest.fixture
async def log_service() -> AsyncIterator[Callable[..., Awaitable[LogService]]]:
    runners: list[web.AppRunner] = []
    hanging: list[asyncio.Event] = []

    async def start(**behaviour: Any) -> LogService:
        service = LogService(**behaviour)
        release = asyncio.Event()
        hanging.append(release)

        async def ingest(request: web.Request) -> web.Response:
            service.arrived.set()
            if service.hang:
                await release.wait()
            if service.fail_first > 0:
                service.fail_first -= 1
                return web.Response(status=500, text="try again")
            body = orjson.loads(await request.read())
            service.posts.append((request.path, request.headers.get("Authorization"), body))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/projects/{project}/logstores/{logstore}", ingest)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        service.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return service

    yield start
    for release in hanging:
        release.set()
    for runner in runners:
        await runner.cleanup()
