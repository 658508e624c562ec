"""One gateway for the whole folder, in front of a fake upstream of every dialect.

    fuzz_gateway.base_url       http://127.0.0.1:<port>
    MODELS[dialect]             the alias served by that dialect's fake: "m-openai_chat",
                                "m-anthropic", "m-gemini", "m-responses"

Module scope keeps the property-based tests fast: hundreds of requests share one gateway.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import FakeGemini
from fakes.openai_upstream import FakeUpstream
from fakes.responses_upstream import FakeResponsesUpstream
from fuzz_support import BODIES
from upstream_shapes import ShapeUpstream

TOKEN = "client-token"
KINDS = {
    "openai_chat": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "responses": "responses",
}
MODELS = {dialect: f"m-{dialect}" for dialect in KINDS}
# Failures cool a key down for a millisecond only: the fuzzing must keep reaching the upstreams.
QUICK_RETRY = {"max_attempts": 1, "cooldown_base_s": 0.001, "cooldown_max_s": 0.001}


@dataclass
class FuzzGateway:
    base_url: str
    session: aiohttp.ClientSession
    app: Any

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, bytes, dict[str, str]]:
        data = body if isinstance(body, bytes) else None
        async with self.session.post(
            self.base_url + path,
            data=data,
            json=None if data is not None else body,
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=10),
            **kw,
        ) as resp:
            return resp.status, await resp.read(), {k.lower(): v for k, v in resp.headers.items()}


def gateway_config(base_urls: dict[str, str], tmp: Any) -> dict[str, Any]:
    providers = {
        dialect: {
            "kind": kind,
            "base_url": base_urls[dialect],
            "api_keys": [f"sk-{dialect}-0"],
            "timeout": 5.0,
            "connect_timeout": 1.0,
        }
        for dialect, kind in KINDS.items()
    }
    return {
        "gateway_tokens": [TOKEN],
        "providers": providers,
        "models": {MODELS[d]: {"providers": [{"provider": d, "model": f"up-{d}"}]} for d in KINDS},
        "retry": QUICK_RETRY,
        "responses_store": {"backend": "sqlite", "path": str(tmp / "responses.db")},
        "records": {"sinks": [{"type": "sqlite", "path": str(tmp / "records.db")}]},
    }


async def start_gateway(config: dict[str, Any], tmp: Any) -> Any:
    from apex_ai_proxy.config import load_config_file
    from apex_ai_proxy.server import create_app

    path = tmp / "apex.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    app = create_app(load_config_file(path, {}))
    port = await app.start("127.0.0.1", 0)
    return app, f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzGateway]:
    openai_fake = await FakeUpstream("openai").start()
    anthropic_fake = await FakeAnthropic().start()
    gemini_fake = await FakeGemini().start()
    responses_fake = await FakeResponsesUpstream().start()
    base_urls = {
        "openai_chat": openai_fake.base_url,
        "anthropic": anthropic_fake.base_url,
        "gemini": gemini_fake.base_url,
        "responses": responses_fake.base_url,
    }
    tmp = tmp_path_factory.mktemp("fuzz")
    app, base_url = await start_gateway(gateway_config(base_urls, tmp), tmp)
    session = aiohttp.ClientSession()
    yield FuzzGateway(base_url, session, app)
    await session.close()
    await app.stop(grace=1.0)
    for fake in (openai_fake, anthropic_fake, gemini_fake, responses_fake):
        await fake.stop()


class Shapes:
    """A gateway whose every provider (one per dialect) is the same ShapeUpstream."""

    def __init__(self, base_url: str, upstream: ShapeUpstream, session: aiohttp.ClientSession):
        self.base_url, self.upstream, self.session = base_url, upstream, session

    async def ask(
        self, endpoint: str, dialect: str, stream: bool, model: str | None = None
    ) -> tuple[int, bytes]:
        body = {**BODIES[endpoint], "model": model or MODELS[dialect], "stream": stream}
        async with self.session.post(
            self.base_url + endpoint,
            data=json.dumps(body),
            headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=10),  # a hung client fails the test
        ) as resp:
            return resp.status, await resp.read()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shapes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shapes]:
    upstream = await ShapeUpstream().start()
    tmp = tmp_path_factory.mktemp("shapes")
    app, base_url = await start_gateway(
        gateway_config(dict.fromkeys(MODELS, upstream.base_url), tmp), tmp
    )
    async with aiohttp.ClientSession() as session:
        yield Shapes(base_url, upstream, session)
    await app.stop(grace=1.0)
    await upstream.stop()
