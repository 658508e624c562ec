"""Property tests: hostile provider headers, request targets and type headers never give a 500
and never reach a listener the allowlist refuses.

The gateway, an allowlisted recording upstream and a refused listener run on their own event
loop in a background thread, so that hypothesis drives plain blocking sockets: every example is
a real request over loopback.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.listeners import Counter, Recorder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apex_ai_proxy.passthrough import (
    PROVIDER_HEADER,
    TYPE_HEADER,
    PassthroughConfig,
    PassthroughError,
    PassthroughTarget,
    check_request_target,
    parse_target,
)
from apex_ai_proxy.passthrough.forward import upstream_url

TOKEN = "gw-prop-token-0123456789"


class World:
    """Gateway + recording upstream + refused listener on a loop in a thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.recorder = Recorder()
        self.counter = Counter()
        self.app: Any = None
        self.port = 0

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> World:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        from apex_ai_proxy.app import create_app
        from apex_ai_proxy.config import load_config_file

        await self.recorder.start()
        await self.counter.start()
        entry = {
            "host": "127.0.0.1",
            "allow_http": True,
            "allow_private": True,
            "ports": [self.recorder.port],
        }
        config = {
            "gateway_tokens": [TOKEN],
            "passthrough": {"enabled": True, "allow": [entry, {"host": "localhost"}]},
            "records": {"sinks": []},
        }
        path = self.tmp / "apex.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.app = create_app(load_config_file(path, {}))
        self.port = await self.app.start("127.0.0.1", 0)

    def stop(self) -> None:
        async def _stop() -> None:
            await self.app.stop(grace=1.0)
            await self.recorder.stop()
            await self.counter.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def request(self, raw: bytes) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(raw)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks)
        return int(answer.split(b" ", 2)[1]) if answer else 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("passthrough-props")).start()
    yield w
    w.stop()


# Characters that have broken URL builders and parsers before.
_TRICKY = "/@:?#%\\.[]*~!$&'()+,;=\t\x00\x7f\x80\xffé" + "09afAF"
_junk = st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(codec="latin-1"), max_size=24)
_no_crlf = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40)


@st.composite
def provider_headers(draw: st.DrawFn, recorder: int, refused: int) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "", "HTTP://", "ftp://", "//"]))
    host = draw(
        st.sampled_from(
            [
                f"127.0.0.1:{recorder}",
                f"127.0.0.1:{refused}",
                f"127.0.0.1:{recorder}@127.0.0.1:{refused}",
                f"[::ffff:127.0.0.1]:{recorder}",
                f"[::1]:{refused}",
                f"localhost:{refused}",
                "0x7f.1",
                "2130706433",
                "127.1",
                "[fe80::1%25lo]",
                "",
            ]
        )
    )
    tail = draw(st.one_of(st.just(""), st.just("/api"), _junk))
    return (scheme + host + tail).replace("\r", "").replace("\n", "")


@st.composite
def request_targets(draw: st.DrawFn, refused: int) -> str:
    prefix = draw(
        st.sampled_from(
            [
                "/v1/chat/completions",
                "/v1/messages",
                f"@127.0.0.1:{refused}",
                f"//127.0.0.1:{refused}",
                f"http://127.0.0.1:{refused}",
                "*",
                "/",
                "",
                "/v1/%2e%2e",
                "/..",
            ]
        )
    )
    rest = draw(_junk)
    return "".join(c for c in prefix + rest if c not in " \r\n")


def _build(world: World, method: str, target: str, provider: str, api_type: str | None) -> bytes:
    lines = [
        f"{method} {target or '/'} HTTP/1.1",
        "Host: gw",
        f"{PROVIDER_HEADER}: {provider}",
        f"X-APEX-AI-PROXY-TOKEN: {TOKEN}",
        f"Authorization: Bearer {TOKEN}",
        "Connection: close",
        "Content-Length: 2",
    ]
    if api_type is not None:
        lines.append(f"{TYPE_HEADER}: {api_type}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n{}"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_passthrough_requests_never_get_a_500_or_reach_a_refused_listener(
    world: World, data: st.DataObject
) -> None:
    recorder, counter = world.recorder, world.counter
    method = data.draw(st.sampled_from(["GET", "POST", "OPTIONS", "CONNECT", "TRACE", "DELETE"]))
    target = data.draw(request_targets(counter.port))
    provider = data.draw(provider_headers(recorder.port, counter.port))
    api_type = data.draw(
        st.one_of(st.none(), st.sampled_from(["anthropic", "responses", "ANTHROPIC "]), _no_crlf)
    )
    seen_before = len(recorder.seen)

    status = world.request(_build(world, method, target, provider, api_type))

    assert status != 500
    assert 200 <= status < 500 or status in (501, 502, 504), status
    assert counter.connections == 0
    for seen in recorder.seen[seen_before:]:
        assert seen["headers"]["Host"] == f"127.0.0.1:{recorder.port}"
        assert TOKEN not in str(seen["headers"])
        assert seen["path_qs"].startswith("/") and not seen["path_qs"].startswith("//")


CFG = PassthroughConfig(
    enabled=True,
    allow=[
        {"host": "127.0.0.1", "allow_http": True, "allow_private": True, "ports": [8080]},
        {"host": "2001:db8::1", "ports": [443]},
    ],
)


@settings(max_examples=2000, deadline=None)
@given(provider=st.text(max_size=60) | provider_headers(8080, 9), raw=request_targets(9) | _junk)
def test_checked_targets_always_build_a_url_to_the_checked_host_and_port(
    provider: str, raw: str
) -> None:
    """Pure property: parse_target / check_request_target raise only PassthroughError, and
    whatever they accept builds a URL whose scheme, host and port are the checked ones."""
    try:
        target, _ = parse_target(provider, CFG)
        path, query = check_request_target(raw)
    except PassthroughError:
        return
    address = {"hostname": target.host, "host": target.host, "port": target.port, "family": 2}
    pinned = PassthroughTarget(
        target.scheme,
        target.host,
        target.port,
        target.base_path,
        (address,),  # type: ignore[arg-type]
    )
    url = upstream_url(pinned, path, query)
    assert (url.scheme, url.host, url.port) == (target.scheme, target.host, target.port)
    assert url.user is None and url.password is None
    assert url.raw_path.startswith(target.base_path or "/")
