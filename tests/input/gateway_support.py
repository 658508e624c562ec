"""Gateways for the malformed-input tests: config, start-up and small clients.

MODELS[dialect]             the alias served by that dialect's upstream: "m-openai_chat",
                            "m-anthropic", "m-gemini", "m-responses"
FuzzGateway.post(...)       (status, body, lower-cased headers) of one POST
Shapes.ask(...)             (status, body) of a model endpoint's seed body, streamed or not
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml
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
    from apex_ai_proxy.app import create_app
    from apex_ai_proxy.config import load_config_file

    path = tmp / "apex.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    app = create_app(load_config_file(path, {}))
    port = await app.start("127.0.0.1", 0)
    return app, f"http://127.0.0.1:{port}"


class Shapes:
    """A gateway whose every provider (one per dialect) is the same ShapeUpstream."""

    def __init__(self, base_url: str, upstream: ShapeUpstream, session: aiohttp.ClientSession):
        self.base_url, self.upstream, self.session = base_url, upstream, session

    async def ask(
        self, endpoint: str, dialect: str, stream: bool, model: str | None = None
    ) -> tuple[int, bytes]:
        # The previous example's broken answer may have cooled the key down for its millisecond:
        # a request inside it gets the honest 503 "cooling down", not the answer under test.
        await asyncio.sleep(2 * QUICK_RETRY["cooldown_max_s"])
        body = {**BODIES[endpoint], "model": model or MODELS[dialect], "stream": stream}
        async with self.session.post(
            self.base_url + endpoint,
            data=json.dumps(body),
            headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=10),  # a hung client fails the test
        ) as resp:
            return resp.status, await resp.read()
