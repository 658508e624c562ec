"""Fixtures shared by the whole suite: fake upstreams and an in-process gateway.

    fake_upstream(name, **kw)       a started `FakeUpstream` on 127.0.0.1:<free port>
    native(name, **kw)              a started `FakeResponsesUpstream` (a kind "responses" provider)
    gateway(config, env=None)       writes the config as YAML under tmp_path, starts the gateway
                                    in process on 127.0.0.1:<free port>, returns a `Gateway`
    gw.openai(token)                an `openai.AsyncOpenAI` aimed at the gateway (max_retries=0)

Everything started by a fixture is stopped when the test ends.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fakes.openai_upstream import FakeUpstream  # noqa: E402
from fakes.ports import free_port  # noqa: E402, F401 - re-exported for tests
from fakes.responses_upstream import FakeResponsesUpstream  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Gateway:
    base_url: str  # http://127.0.0.1:<port>, without /v1
    config_path: Path
    config: Any
    app: Any
    _clients: list[openai.AsyncOpenAI] = field(default_factory=list)
    _sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    def openai(self, token: str = "client-token", **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 20.0)
        client = openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=token, **kwargs)
        self._clients.append(client)
        return client

    def http(self) -> aiohttp.ClientSession:
        """A raw HTTP session for requests the SDK cannot make (bad JSON, wrong method, …)."""
        session = aiohttp.ClientSession(base_url=self.base_url)
        self._sessions.append(session)
        return session

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()
        for session in self._sessions:
            await session.close()


PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake upstreams are on loopback: an HTTPS_PROXY in the developer's shell must not send
    the suite's traffic elsewhere. Tests of proxies set what they need."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def fake_upstream() -> AsyncIterator[Callable[..., Awaitable[FakeUpstream]]]:
    started: list[FakeUpstream] = []

    async def start(name: str = "fake", **kwargs: Any) -> FakeUpstream:
        fake = await FakeUpstream(name, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


@pytest.fixture
async def native() -> AsyncIterator[Callable[..., Awaitable[FakeResponsesUpstream]]]:
    started: list[FakeResponsesUpstream] = []

    async def start(name: str = "native", **kwargs: Any) -> FakeResponsesUpstream:
        fake = await FakeResponsesUpstream(name, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


def write_config(tmp_path: Path, config: dict[str, Any] | str, name: str = "apex.yaml") -> Path:
    path = tmp_path / name
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    from apex_ai_proxy.app import create_app
    from apex_ai_proxy.config import load_config_file

    runners: list[Any] = []
    gateways: list[Gateway] = []

    async def start(config: dict[str, Any] | str, env: dict[str, str] | None = None) -> Gateway:
        if isinstance(config, dict) and "records" not in config:
            # The default sink writes ./apex-records.db; keep test records in the test's folder.
            config = {
                **config,
                "records": {"sinks": [{"type": "sqlite", "path": str(tmp_path / "records.db")}]},
            }
        path = write_config(tmp_path, config, f"apex-{len(gateways)}.yaml")
        loaded = load_config_file(path, env if env is not None else {})
        app = create_app(loaded)
        port = await app.start("127.0.0.1", 0)
        runners.append(app)
        gw = Gateway(f"http://127.0.0.1:{port}", path, loaded, app)
        gateways.append(gw)
        return gw

    yield start
    for gw in gateways:
        await gw.close_clients()
    for runner in reversed(runners):
        await runner.stop(grace=1.0)
