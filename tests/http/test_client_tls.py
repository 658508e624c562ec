"""TLS to upstreams: verified by default, a provider's ca_file, SSL_CERT_FILE, tls_verify false,
SNI by host name (never an IP literal). A CA is made per test; the server is on loopback."""

from __future__ import annotations

import pytest
from client_support import RawUpstream, client, make_pki, ok, server_tls, timeouts

from apex_ai_proxy.config import Config
from apex_ai_proxy.http import ClientOptions, UpstreamConnectionError


@pytest.fixture
def pki(tmp_path, monkeypatch):
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return make_pki(tmp_path)


async def _fetch(url: str, **kwargs) -> bytes:
    http = client()
    try:
        response = await http.send("GET", url, {}, None, timeouts(), **kwargs)
        return await response.read()
    finally:
        await http.close()


async def test_tls_upstream_is_verified_with_the_provider_ca_file(pki):
    sni: list = []
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, sni))
        url = f"https://localhost:{upstream.port}/"
        assert await _fetch(url, options=ClientOptions(ca_file=pki.ca_file)) == b"hello"
    assert sni == ["localhost"]


async def test_tls_upstream_with_an_unknown_ca_is_refused(pki):
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, []))
        with pytest.raises(UpstreamConnectionError, match="TLS failed: CERTIFICATE_VERIFY_FAILED"):
            await _fetch(f"https://localhost:{upstream.port}/")
    assert upstream.requests == []


async def test_tls_verify_false_accepts_an_unknown_ca(pki):
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, []))
        url = f"https://localhost:{upstream.port}/"
        assert await _fetch(url, options=ClientOptions(tls_verify=False)) == b"hello"


async def test_ssl_cert_file_environment_variable_is_honoured(pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", pki.ca_file)
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, []))
        assert await _fetch(f"https://localhost:{upstream.port}/") == b"hello"


async def test_sni_and_certificate_check_use_the_host_name_when_connecting_to_a_pinned_address(
    pki,
):
    sni: list = []
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, sni))
        url = f"https://api.example.test:{upstream.port}/"
        options = ClientOptions(ca_file=pki.ca_file)
        assert await _fetch(url, options=options, connect_to=["127.0.0.1"]) == b"hello"
        assert upstream.requests[0].header("host") == [f"api.example.test:{upstream.port}"]
    assert sni == ["api.example.test"]


async def test_an_ip_literal_is_never_sent_as_sni_and_is_checked_against_the_certificate(pki):
    sni: list = []
    async with RawUpstream(lambda r: ok()) as upstream:
        await upstream.stop()
        await upstream.start(ssl=server_tls(pki, sni))
        url = f"https://127.0.0.1:{upstream.port}/"
        assert await _fetch(url, options=ClientOptions(ca_file=pki.ca_file)) == b"hello"
    assert all(name is None for name in sni)


def test_tls_verify_false_is_warned_about_at_start_up():
    config = Config.model_validate(
        {"providers": {"corp": {"base_url": "https://x.test", "api_key": "k", "tls_verify": False}}}
    )
    assert any("providers.corp: tls_verify is false" in w for w in config.warnings())


def test_ca_file_that_does_not_exist_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="ca_file"):
        Config.model_validate(
            {"providers": {"p": {"api_key": "k", "ca_file": str(tmp_path / "missing.pem")}}}
        )
