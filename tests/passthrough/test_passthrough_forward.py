"""Passthrough end to end: client → tiny gateway app → fake upstream, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from apex_ai_proxy.http import HttpServer, PathRouter, Request, StreamResponse
from apex_ai_proxy.passthrough import (
    PROVIDER_HEADER,
    TYPE_HEADER,
    PassthroughClient,
    PassthroughConfig,
    PassthroughError,
    PassthroughTarget,
    check_api_type,
    forward,
    refusal_response,
    resolve_target,
)

PLAIN = b'{"id":"chatcmpl-1","object":"chat.completion"}'


class FakeUpstream:
    """Records every request it receives; a few routes misbehave on purpose."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.redirect_target_hits = 0
        self.release_second_chunk = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/stream", self.stream)
        app.router.add_get("/api/redirect", self.redirect)
        app.router.add_get("/redirect-target", self.redirect_target)
        app.router.add_get("/api/gzip", self.gzipped)
        app.router.add_get("/api/cut", self.cut)
        app.router.add_get("/api/slow", self.slow)
        app.router.add_get("/api/nocontent", self.nocontent)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app)
        self.port = 0

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _record(self, request: web.Request) -> None:
        self.seen.append(
            {
                "method": request.method,
                "path_qs": request.raw_path,
                "headers": request.headers.copy(),
                "body": await request.read(),
            }
        )

    async def echo(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(
            status=201,
            body=PLAIN,
            content_type="application/json",
            headers={"X-Upstream": "yes", "Keep-Alive": "timeout=5"},
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n":1}\n\n')
        await self.release_second_chunk.wait()
        await response.write(b'data: {"n":2}\n\n')
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def redirect(self, request: web.Request) -> web.Response:
        await self._record(request)
        location = f"http://127.0.0.1:{self.port}/redirect-target"
        return web.Response(status=302, headers={"Location": location})

    async def redirect_target(self, request: web.Request) -> web.Response:
        self.redirect_target_hits += 1
        return web.Response(text="followed")

    async def gzipped(self, request: web.Request) -> web.Response:
        await self._record(request)
        if "gzip" not in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=PLAIN, content_type="application/json")
        return web.Response(
            body=gzip.compress(PLAIN),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def cut(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n":1}\n\n')
        await asyncio.sleep(0.05)
        request.transport.close()  # dies mid-stream, without the final chunk
        return response

    async def nocontent(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Upstream": "yes"})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")


def pinned_target(host: str, port: int, scheme: str = "http") -> PassthroughTarget:
    address = {
        "hostname": host,
        "host": "127.0.0.1",
        "port": port,
        "family": socket.AF_INET,
        "proto": socket.IPPROTO_TCP,
        "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    }
    return PassthroughTarget(scheme, host, port, "/api", (address,))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    """The handler the core will mount, reduced to the passthrough calls."""

    def __init__(self, config: PassthroughConfig, **client_options) -> None:
        self.config = config
        self.client = PassthroughClient(config, **client_options)
        self.outcomes = []
        self.pinned_target: PassthroughTarget | None = None
        # Mounted on the gateway's own HTTP server: every path goes to `handle`.
        self.server = HttpServer(
            PathRouter(),
            max_body=64 * 1024 * 1024,
            not_found=self.handle,
            method_not_allowed=None,  # type: ignore[arg-type]
        )
        self.url = ""

    async def start(self) -> None:
        port = await self.server.listen("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{port}"

    async def handle(self, request: Request) -> StreamResponse:
        api_type = None
        try:
            api_type = check_api_type(request.headers.get(TYPE_HEADER))
            target = self.pinned_target or await resolve_target(
                request.headers[PROVIDER_HEADER], self.config
            )
        except PassthroughError as exc:
            return refusal_response(exc, api_type=api_type, path=request.path)
        body = await request.read()
        result = await forward(request, body, target, self.client, api_type=api_type)
        self.outcomes.append(result.outcome)
        return result.response

    async def stop(self) -> None:
        await self.client.close()
        await self.server.shutdown(0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def upstream():
    fake = FakeUpstream()
    await fake.start()
    yield fake
    fake.release_second_chunk.set()
    await fake.runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dead_port():
    return free_port()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(upstream, dead_port):
    config = PassthroughConfig(
        enabled=True,
        timeout=1.0,
        connect_timeout=2.0,
        max_body_bytes=1000,
        allow=[
            {
                "host": "127.0.0.1",
                "allow_http": True,
                "allow_private": True,
                "ports": [upstream.port, dead_port],
            },
            {"host": "localhost", "allow_http": True, "ports": [upstream.port]},
            {"host": "secure.test"},
            {"host": "169.254.169.254", "allow_http": True, "allow_private": True},
        ],
    )
    gw = Gateway(config)
    await gw.start()
    yield gw
    await gw.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def http():
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        yield session


def provider(upstream: FakeUpstream, base: str = "/api") -> dict[str, str]:
    return {PROVIDER_HEADER: f"http://127.0.0.1:{upstream.port}{base}"}


async def test_method_query_body_and_credentials_are_forwarded(gateway, upstream, http):
    body = b'{"model":"m","x":[1,2]}'
    headers = provider(upstream) | {
        "Authorization": "Bearer sk-upstream",
        "x-api-key": "ak-upstream",
        "Content-Type": "application/json",
        TYPE_HEADER: "chat-completions",
    }
    url = f"{gateway.url}/v1/things/a%2Fb?key=secret&b=%20x"
    async with http.put(url, data=body, headers=headers) as response:
        assert response.status == 201
        assert await response.read() == PLAIN
        assert response.headers["X-Upstream"] == "yes"
        assert "Keep-Alive" not in response.headers
    seen = upstream.seen[-1]
    assert seen["method"] == "PUT"
    assert seen["path_qs"] == "/api/v1/things/a%2Fb?key=secret&b=%20x"
    assert seen["body"] == body
    assert seen["headers"]["Authorization"] == "Bearer sk-upstream"
    assert seen["headers"]["x-api-key"] == "ak-upstream"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["Content-Length"] == str(len(body))
    assert seen["headers"]["Host"] == f"127.0.0.1:{upstream.port}"

    outcome = gateway.outcomes[-1]
    assert outcome.status == 201
    assert outcome.method == "PUT"
    assert outcome.api_type == "chat-completions"
    assert outcome.request_bytes == len(body)
    assert outcome.response_bytes == len(PLAIN)
    assert outcome.ttfb_ms is not None and outcome.duration_ms >= outcome.ttfb_ms
    assert outcome.upstream_url == f"http://127.0.0.1:{upstream.port}/api/v1/things/a%2Fb"
    assert outcome.error is None


async def test_gateway_hop_by_hop_and_forwarding_headers_are_stripped(gateway, upstream, http):
    headers = provider(upstream) | {
        "X-APEX-AI-PROXY-TOKEN": "gateway-secret",
        "X-Apex-Ai-Proxy-Mapping": "a#b",
        "Connection": "keep-alive, X-Hop-Custom",
        "X-Hop-Custom": "drop me",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Trailer": "X-Checksum",
        "Proxy-Authorization": "Basic eA==",
        "Proxy-Foo": "bar",
        "Forwarded": "for=10.0.0.1",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "gw.internal",
        "X-Real-IP": "10.0.0.1",
        "Via": "1.1 lb",
        "CF-Connecting-IP": "10.0.0.1",
        "True-Client-IP": "10.0.0.1",
        "X-Keep-Me": "kept",
    }
    async with http.post(f"{gateway.url}/v1/chat/completions", data=b"{}", headers=headers) as r:
        assert r.status == 201
    received = upstream.seen[-1]["headers"]
    assert received["X-Keep-Me"] == "kept"
    assert upstream.seen[-1]["path_qs"] == "/api/v1/chat/completions"
    leaked = [
        name
        for name in received
        if name.lower().startswith(("x-apex-ai-proxy-", "x-forwarded-", "proxy-"))
        or name.lower()
        in {
            "x-hop-custom",
            "keep-alive",
            "te",
            "trailer",
            "forwarded",
            "x-real-ip",
            "via",
            "cf-connecting-ip",
            "true-client-ip",
        }
    ]
    assert leaked == []
    assert received.get("Connection", "keep-alive").lower() == "keep-alive"


async def test_sse_stream_is_relayed_chunk_by_chunk(gateway, upstream, http):
    upstream.release_second_chunk.clear()
    headers = provider(upstream) | {"Accept": "text/event-stream"}
    async with asyncio.timeout(5):
        async with http.post(f"{gateway.url}/stream", data=b"{}", headers=headers) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            # The upstream holds its second event until we saw the first: a buffering relay
            # would never deliver it and the timeout would fail the test.
            first = await response.content.readuntil(b"\n\n")
            assert first == b'data: {"n":1}\n\n'
            upstream.release_second_chunk.set()
            rest = await response.read()
    assert rest == b'data: {"n":2}\n\ndata: [DONE]\n\n'
    assert gateway.outcomes[-1].response_bytes == len(first + rest)
    assert gateway.outcomes[-1].error is None


async def test_redirect_is_relayed_not_followed(gateway, upstream, http):
    url = f"{gateway.url}/redirect"
    async with http.get(url, headers=provider(upstream), allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == f"http://127.0.0.1:{upstream.port}/redirect-target"
    assert upstream.seen[-1]["path_qs"] == "/api/redirect"
    assert upstream.redirect_target_hits == 0
    assert gateway.outcomes[-1].status == 302


async def test_compressed_body_relayed_with_its_content_encoding(gateway, upstream, http):
    headers = provider(upstream) | {"Accept-Encoding": "gzip"}
    async with http.get(f"{gateway.url}/gzip", headers=headers) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        raw = await response.read()
    assert gzip.decompress(raw) == PLAIN
    assert gateway.outcomes[-1].response_bytes == len(raw)


async def test_no_accept_encoding_from_client_means_identity_upstream(gateway, upstream, http):
    async with http.get(
        f"{gateway.url}/gzip", headers=provider(upstream), skip_auto_headers=["Accept-Encoding"]
    ) as response:
        assert "Content-Encoding" not in response.headers
        assert await response.read() == PLAIN
    assert upstream.seen[-1]["headers"]["Accept-Encoding"] == "identity"


async def test_no_content_type_or_user_agent_invented(gateway, upstream, http):
    async with http.post(
        f"{gateway.url}/raw",
        data=b"abc",
        headers=provider(upstream),
        skip_auto_headers=["User-Agent", "Content-Type"],
    ) as response:
        assert response.status == 201
    received = upstream.seen[-1]["headers"]
    assert "Content-Type" not in received
    assert "User-Agent" not in received


async def test_upstream_cut_mid_stream_is_not_reported_as_complete(gateway, upstream, http):
    async with http.get(f"{gateway.url}/cut", headers=provider(upstream)) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert "cut short" in gateway.outcomes[-1].error


async def test_unreachable_upstream_is_502_in_openai_shape(gateway, dead_port, http):
    headers = {PROVIDER_HEADER: f"http://127.0.0.1:{dead_port}"}
    async with http.post(f"{gateway.url}/v1/chat/completions", data=b"{}", headers=headers) as r:
        assert r.status == 502
        body = orjson.loads(await r.read())
    assert body["error"]["code"] == "upstream_unavailable"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert gateway.outcomes[-1].status == 502


async def test_upstream_timeout_is_504_in_anthropic_shape(gateway, upstream, http):
    headers = provider(upstream) | {TYPE_HEADER: "anthropic"}
    async with http.get(f"{gateway.url}/slow", headers=headers) as response:
        assert response.status == 504
        body = orjson.loads(await response.read())
    assert body["type"] == "error"
    assert "timed out" in body["error"]["message"]


async def test_body_over_limit_is_413_without_contacting_upstream(gateway, upstream, http):
    before = len(upstream.seen)
    async with http.post(
        f"{gateway.url}/v1/messages", data=b"x" * 1001, headers=provider(upstream)
    ) as response:
        assert response.status == 413
        body = orjson.loads(await response.read())
    assert body["error"]["type"] == "request_too_large"
    assert len(upstream.seen) == before


@pytest.mark.parametrize(
    "header, path, status, fragment",
    [
        ("zenmux.ai/api", "/v1/chat/completions", 403, "not on the passthrough allowlist"),
        ("http://secure.test/v1", "/v1/chat/completions", 403, "plain http"),
        ("http://169.254.169.254/latest", "/v1/chat/completions", 403, "metadata"),
        ("user@127.0.0.1", "/v1/chat/completions", 400, "without credentials"),
    ],
)
async def test_refusals_never_reach_an_upstream(
    gateway, upstream, http, header, path, status, fragment
):
    before = len(upstream.seen)
    async with http.post(
        f"{gateway.url}{path}", data=b"{}", headers={PROVIDER_HEADER: header}
    ) as r:
        assert r.status == status
        body = orjson.loads(await r.read())
    assert fragment in body["error"]["message"]
    assert len(upstream.seen) == before


async def test_name_resolving_to_loopback_is_refused(gateway, upstream, http):
    before = len(upstream.seen)
    headers = {PROVIDER_HEADER: f"http://localhost:{upstream.port}/api"}
    async with http.post(f"{gateway.url}/v1/messages", data=b"{}", headers=headers) as r:
        assert r.status == 403
        body = orjson.loads(await r.read())
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "loopback" in body["error"]["message"]
    assert len(upstream.seen) == before


async def test_unknown_api_type_is_400(gateway, upstream, http):
    headers = provider(upstream) | {TYPE_HEADER: "gemini"}
    async with http.post(f"{gateway.url}/v1/chat/completions", data=b"{}", headers=headers) as r:
        assert r.status == 400
        body = orjson.loads(await r.read())
    assert body["error"]["code"] == "invalid_passthrough_header"


async def test_connection_goes_to_the_pinned_address_with_the_host_name(upstream, http):
    # `pinned.invalid` has no DNS answer at all: only the pin can make this connect.
    gw = Gateway(PassthroughConfig(enabled=True))
    gw.pinned_target = pinned_target("pinned.invalid", upstream.port)
    await gw.start()
    try:
        async with http.get(f"{gw.url}/v1/models") as response:
            assert response.status == 201
    finally:
        await gw.stop()
    assert upstream.seen[-1]["headers"]["Host"] == f"pinned.invalid:{upstream.port}"
    assert upstream.seen[-1]["path_qs"] == "/api/v1/models"


async def test_passthrough_client_never_falls_back_to_system_dns(upstream):
    from apex_ai_proxy.passthrough.forward import upstream_url
    from apex_ai_proxy.passthrough.guard import PassthroughRefused

    client = PassthroughClient(PassthroughConfig())
    unchecked = PassthroughTarget("http", "localhost", upstream.port, "/api")
    checked = pinned_target("localhost", upstream.port)
    try:
        with pytest.raises(PassthroughRefused, match="not resolved and checked"):
            await client.send("GET", upstream_url(checked, "/x", ""), [], None, unchecked)
    finally:
        await client.close()


async def test_client_disconnect_mid_stream_is_recorded(gateway, upstream):
    upstream.release_second_chunk.clear()
    count = len(gateway.outcomes)
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{gateway.url}/stream", data=b"{}", headers=provider(upstream)
        )
        assert await response.content.readuntil(b"\n\n") == b'data: {"n":1}\n\n'
        response.close()  # the client goes away while the upstream is still streaming
    upstream.release_second_chunk.set()
    async with asyncio.timeout(5):
        while len(gateway.outcomes) == count:
            await asyncio.sleep(0.01)
    assert gateway.outcomes[-1].error == "client disconnected"


async def test_head_keeps_length_and_sends_no_body(gateway, upstream, http):
    async with http.head(f"{gateway.url}/v1/models", headers=provider(upstream)) as response:
        assert response.status == 201
        assert response.headers["Content-Length"] == str(len(PLAIN))
        assert await response.read() == b""
    assert upstream.seen[-1]["method"] == "HEAD"


async def test_204_is_relayed_without_body(gateway, upstream, http):
    async with http.get(f"{gateway.url}/nocontent", headers=provider(upstream)) as response:
        assert response.status == 204
        assert response.headers["X-Upstream"] == "yes"
        assert await response.read() == b""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=pinned.test",
            "-addext",
            "subjectAltName=DNS:pinned.test",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_upstream(certificate):
    cert, key = certificate
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.host}")

    app = web.Application()
    app.router.add_get("/api/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield site._server.sockets[0].getsockname()[1], server_names
    await runner.cleanup()


@pytest.mark.parametrize("host, status", [("pinned.test", 200), ("other.test", 502)])
async def test_tls_uses_host_name_for_sni_and_certificate_check(
    certificate, tls_upstream, http, host, status
):
    port, server_names = tls_upstream
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    gw = Gateway(PassthroughConfig(enabled=True), ssl_context=trust)
    gw.pinned_target = pinned_target(host, port, scheme="https")
    await gw.start()
    try:
        async with http.get(f"{gw.url}/hello") as response:
            assert response.status == status
            body = await response.read()
    finally:
        await gw.stop()
    assert server_names[-1] == host
    if status == 200:
        assert body == f"hello {host}:{port}".encode()
