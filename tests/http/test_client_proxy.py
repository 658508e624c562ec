"""Egress proxies: HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case) and a provider's `proxy`.
The proxy is a tiny CONNECT / absolute-form proxy on loopback that counts what passes."""

from __future__ import annotations

import base64

import pytest
from client_support import (
    CountingProxy,
    RawUpstream,
    client,
    make_pki,
    ok,
    server_tls,
    timeouts,
)

from apex_ai_proxy.config import Config
from apex_ai_proxy.http import ClientOptions, UpstreamConnectionError


async def _fetch(url: str, **kwargs) -> bytes:
    http = client()
    try:
        response = await http.send("GET", url, {}, None, timeouts(), **kwargs)
        return await response.read()
    finally:
        await http.close()


async def test_https_through_a_proxy_uses_connect_then_tls_to_the_origin(tmp_path):
    pki = make_pki(tmp_path)
    sni: list = []
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, sni))
        options = ClientOptions(proxy=proxy.url, ca_file=pki.ca_file)
        url = f"https://api.example.test:{upstream.port}/v1/x"
        assert await _fetch(url, options=options) == b"hello"
    assert [h.request_line for h in proxy.heads] == [
        f"CONNECT api.example.test:{upstream.port} HTTP/1.1".encode()
    ]
    assert sni == ["api.example.test"]  # TLS inside the tunnel is with the origin
    assert upstream.requests[0].request_line == b"GET /v1/x HTTP/1.1"


async def test_http_through_a_proxy_sends_the_absolute_form_target():
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        url = f"http://127.0.0.1:{upstream.port}/v1/x?q=1"
        assert await _fetch(url, options=ClientOptions(proxy=proxy.url)) == b"hello"
    assert proxy.heads[0].request_line == f"GET {url} HTTP/1.1".encode()
    assert proxy.heads[0].header("host") == [f"127.0.0.1:{upstream.port}"]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_proxy_credentials_are_sent_as_proxy_authorization_basic(scheme, tmp_path):
    pki = make_pki(tmp_path)
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        if scheme == "https":
            await upstream.stop()
            await upstream.start(ssl=server_tls(pki, []))
        proxy_url = f"http://us%40er:p%3Ass@127.0.0.1:{proxy.port}"
        options = ClientOptions(proxy=proxy_url, ca_file=pki.ca_file)
        await _fetch(f"{scheme}://localhost:{upstream.port}/", options=options)
    expected = "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert proxy.heads[0].header("proxy-authorization") == [expected]
    if scheme == "https":  # inside the tunnel the origin sees our request as sent: no credential
        assert upstream.requests[0].header("proxy-authorization") == []


async def test_proxy_refusal_names_the_proxy_but_never_its_credentials(tmp_path):
    async with CountingProxy(refuse=407) as proxy:
        options = ClientOptions(proxy=f"http://user:hunter2secret@127.0.0.1:{proxy.port}")
        with pytest.raises(UpstreamConnectionError) as caught:
            await _fetch("https://localhost:1/", options=options)
    message = str(caught.value)
    assert f"127.0.0.1:{proxy.port}" in message and "407" in message
    assert "hunter2secret" not in message and "user" not in message


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy"])
async def test_http_proxy_environment_variable_is_used(name, monkeypatch):
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        monkeypatch.setenv(name, proxy.url)
        assert await _fetch(upstream.url + "/") == b"hello"
    assert len(proxy.heads) == 1


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy"])
async def test_https_proxy_environment_variable_is_used(name, monkeypatch, tmp_path):
    pki = make_pki(tmp_path)
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, []))
        monkeypatch.setenv(name, proxy.url)
        url = f"https://localhost:{upstream.port}/"
        assert await _fetch(url, options=ClientOptions(ca_file=pki.ca_file)) == b"hello"
    assert proxy.heads[0].request_line.startswith(b"CONNECT localhost:")


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
async def test_no_proxy_bypasses_the_environment_proxy(no_proxy, monkeypatch):
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert await _fetch(upstream.url + "/") == b"hello"
    assert proxy.heads == []


async def test_empty_proxy_setting_ignores_the_environment_proxy(monkeypatch):
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert await _fetch(upstream.url + "/", options=ClientOptions(proxy="")) == b"hello"
    assert proxy.heads == []


async def test_pinned_addresses_through_a_proxy_tunnel_to_the_pinned_address():
    async with RawUpstream(lambda r: ok()) as upstream, CountingProxy() as proxy:
        url = f"http://api.example.test:{upstream.port}/"
        options = ClientOptions(proxy=proxy.url)
        assert await _fetch(url, options=options, connect_to=["127.0.0.1"]) == b"hello"
    assert proxy.heads[0].request_line == f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1".encode()
    assert upstream.requests[0].header("host") == [f"api.example.test:{upstream.port}"]


def test_provider_proxy_setting_must_be_an_http_url():
    with pytest.raises(ValueError, match="http:// URL"):
        Config.model_validate({"providers": {"p": {"api_key": "k", "proxy": "socks5://h:1"}}})


def test_proxy_password_is_treated_as_a_secret():
    config = Config.model_validate(
        {"providers": {"p": {"api_key": "k", "proxy": "http://u:s3cr%2Ft@proxy.corp:3128"}}}
    )
    assert "s3cr/t" in config.secrets()
