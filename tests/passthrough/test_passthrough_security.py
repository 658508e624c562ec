"""Passthrough under hostile request lines and headers, over real loopback sockets.

A raw socket speaks to the whole gateway so that request targets no HTTP client library would
send (`CONNECT @host:port`, `//host/x`, absolute-form, `*`) reach it byte for byte. A listener
on a port the allowlist refuses counts every connection it gets: it must never get one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakes.listeners import Counter, Recorder

from apex_ai_proxy.passthrough import PROVIDER_HEADER, TYPE_HEADER

TOKEN = "gw-sec-token-0123456789"
TOKEN_HEADER = "X-APEX-AI-PROXY-TOKEN"


@pytest.fixture
async def recorder():
    fake = await Recorder().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def counter():
    listener = await Counter().start()
    yield listener
    await listener.stop()


def config(tmp_path: Path, port: int, **passthrough: Any) -> dict[str, Any]:
    entry = {"host": "127.0.0.1", "allow_http": True, "allow_private": True, "ports": [port]}
    return {
        "gateway_tokens": [TOKEN],
        "passthrough": {"enabled": True, "allow": [entry], **passthrough},
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
    }


async def raw_request(base_url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send `head` (request line + headers, CRLF-joined by the caller) as is; (status, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode("latin-1") + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def head(request_line: str, provider: str, *extra: str) -> str:
    lines = [
        request_line,
        "Host: gateway.test",
        f"{PROVIDER_HEADER}: {provider}",
        f"{TOKEN_HEADER}: {TOKEN}",
        "Connection: close",
        *extra,
    ]
    return "\r\n".join(lines)


async def records(gw, tmp_path: Path) -> list[dict[str, Any]]:
    await gw.app.services.recorder.flush()
    path = tmp_path / "records.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


# --- item 1: the raw target can never name the authority ---------------------------------------


def absolute_form_outcome(status: int, recorder, path: str) -> bool:
    """The two safe answers to an absolute-form target: refused with 400, or (by an HTTP
    server that reduces absolute-form to its path, as RFC 9112 allows) relayed to the checked
    upstream with exactly that path."""
    if status == 400:
        return recorder.seen == []
    return status == 200 and [seen["path_qs"] for seen in recorder.seen] == [path]


@pytest.mark.parametrize(
    "request_line",
    [
        "CONNECT @127.0.0.1:{port} HTTP/1.1",
        "GET @127.0.0.1:{port}/x HTTP/1.1",
        "GET //127.0.0.1:{port}/x HTTP/1.1",
        "GET http://127.0.0.1:{port}/x HTTP/1.1",
        "POST @127.0.0.1:{port}/v1/chat/completions HTTP/1.1",
    ],
)
async def test_connect_with_userinfo_target_never_reaches_a_refused_port(
    gateway, recorder, counter, tmp_path: Path, request_line: str
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    line = request_line.format(port=counter.port)
    status, _ = await raw_request(
        gw.base_url, head(line, f"http://127.0.0.1:{recorder.port}", "Content-Length: 0")
    )
    await asyncio.sleep(0.3)  # a handler that went on after the answer would connect by now
    assert counter.connections == 0
    if line.startswith("GET http://"):
        assert absolute_form_outcome(status, recorder, "/x"), status
    else:
        assert 400 <= status < 500 or status == 501
        assert recorder.seen == []  # not the allowed upstream with a wrong path either


@pytest.mark.parametrize(
    "raw_target",
    [
        "@127.0.0.1:{port}",
        "@127.0.0.1:{port}/x",
        "//127.0.0.1:{port}/x",
        "http://127.0.0.1:{port}/x",
        "*",
        "127.0.0.1:{port}",
        "/x\\@127.0.0.1:{port}",
    ],
)
async def test_forward_refuses_a_non_origin_target_without_the_servers_help(
    recorder, counter, raw_target: str
) -> None:
    """forward() alone (no handler or server check before it) never builds a URL from a raw
    target. The request stand-in carries what a server would hand over for such a line."""
    from types import SimpleNamespace

    from apex_ai_proxy.passthrough import (
        PassthroughClient,
        PassthroughConfig,
        forward,
        resolve_target,
    )

    entry = {"host": "127.0.0.1", "allow_http": True, "allow_private": True}
    cfg = PassthroughConfig(enabled=True, allow=[{**entry, "ports": [recorder.port]}])
    client = PassthroughClient(cfg)
    target = await resolve_target(f"http://127.0.0.1:{recorder.port}", cfg)
    raw = raw_target.format(port=counter.port)
    request = SimpleNamespace(method="GET", raw_path_qs=raw, path=raw, headers={})
    try:
        result = await forward(request, b"", target, client)  # type: ignore[arg-type]
    finally:
        await client.close()
    assert result.response.status == 400
    assert orjson.loads(result.response.body)["error"]["code"] == "invalid_request_target"
    assert counter.connections == 0
    assert recorder.seen == []


async def test_an_ip_literal_provider_is_checked_against_address_refusal() -> None:
    from apex_ai_proxy.passthrough import PassthroughConfig, PassthroughRefused, resolve_target

    entry = {"host": "127.0.0.1", "allow_http": True, "ports": [8080]}  # no allow_private
    cfg = PassthroughConfig(enabled=True, allow=[entry])
    with pytest.raises(PassthroughRefused, match="loopback"):
        await resolve_target("http://127.0.0.1:8080", cfg)
    cfg = PassthroughConfig(enabled=True, allow=[{"host": "::ffff:127.0.0.1", "ports": [443]}])
    with pytest.raises(PassthroughRefused, match="loopback"):
        await resolve_target("[::ffff:127.0.0.1]:443", cfg)


async def test_forward_refuses_an_ip_literal_target_that_was_not_resolved_and_checked(
    counter,
) -> None:
    from apex_ai_proxy.passthrough import PassthroughTarget
    from apex_ai_proxy.passthrough.forward import upstream_url
    from apex_ai_proxy.passthrough.guard import PassthroughRefused

    unchecked = PassthroughTarget("http", "127.0.0.1", counter.port, "")
    with pytest.raises(PassthroughRefused):
        upstream_url(unchecked, "/x", "")
    other = {"hostname": "127.0.0.1", "host": "127.0.0.2", "port": counter.port, "family": 2}
    wrong = PassthroughTarget("http", "127.0.0.1", counter.port, "", (other,))  # type: ignore[arg-type]
    with pytest.raises(PassthroughRefused):
        upstream_url(wrong, "/x", "")


# --- item 12: gateway tokens never go upstream --------------------------------------------------


@pytest.mark.parametrize("open_mode", [False, True])
async def test_gateway_token_is_never_forwarded_upstream(
    gateway, recorder, tmp_path: Path, open_mode: bool
) -> None:
    gw = await gateway(config(tmp_path, recorder.port, open=open_mode))
    provider = f"http://127.0.0.1:{recorder.port}"
    status, _ = await raw_request(
        gw.base_url,
        head(
            "POST /v1/chat/completions HTTP/1.1",
            provider,
            f"Authorization: Bearer {TOKEN}",
            f"x-api-key: {TOKEN}",
            f"x-goog-api-key:  {TOKEN} ",
            f"api-key: {TOKEN}",
            "Content-Length: 2",
        ),
        b"{}",
    )
    assert status == 200
    (seen,) = recorder.seen
    assert TOKEN not in str(seen["headers"])
    for name in ("Authorization", "x-api-key", "x-goog-api-key", "api-key"):
        assert name not in seen["headers"]
    (record,) = await records(gw, tmp_path)
    assert sorted(record["dropped_fields"]) == [
        "header:api-key",
        "header:authorization",
        "header:x-api-key",
        "header:x-goog-api-key",
    ]
    assert TOKEN not in str(record)


async def test_the_clients_own_upstream_key_still_goes_upstream(
    gateway, recorder, tmp_path: Path
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    own = "sk-client-own-upstream-key"
    status, _ = await raw_request(
        gw.base_url,
        head(
            "GET /v1/models HTTP/1.1",
            f"http://127.0.0.1:{recorder.port}",
            f"Authorization: Bearer {own}",
            f"x-api-key: {TOKEN}x",  # a longer value is not the token
        ),
    )
    assert status == 200
    (seen,) = recorder.seen
    assert seen["headers"]["Authorization"] == f"Bearer {own}"
    assert seen["headers"]["x-api-key"] == f"{TOKEN}x"
    (record,) = await records(gw, tmp_path)
    assert record["dropped_fields"] == []


# --- item 5: client input gives 4xx in the client's dialect, never 500 -------------------------


@pytest.mark.parametrize(
    ("request_line", "extra"),
    [
        ("GET http://127.0.0.1:1/v1/models HTTP/1.1", ()),
        ("POST http://127.0.0.1:1/v1/messages HTTP/1.1", ()),
        ("POST http://h/v1/x HTTP/1.1", (f"{TYPE_HEADER}: anthropic",)),
    ],
)
async def test_absolute_form_targets_reach_only_the_checked_upstream_with_their_path(
    gateway, recorder, tmp_path: Path, request_line: str, extra: tuple[str, ...]
) -> None:
    """The server reduces absolute-form to its path (RFC 9112 3.2.2): the authority in the
    target never steers passthrough, which relays exactly that path to the checked upstream."""
    gw = await gateway(config(tmp_path, recorder.port))
    status, body = await raw_request(
        gw.base_url,
        head(request_line, f"http://127.0.0.1:{recorder.port}", "Content-Length: 0", *extra),
    )
    target = request_line.split()[1]
    assert status == 200, body
    assert [seen["path_qs"] for seen in recorder.seen] == ["/" + target.split("/", 3)[3]]


@pytest.mark.parametrize("extra", [(), (f"{TYPE_HEADER}: anthropic",)])
async def test_asterisk_target_is_answered_by_the_server_and_never_reaches_passthrough(
    gateway, recorder, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, body = await raw_request(
        gw.base_url,
        head(
            "OPTIONS * HTTP/1.1", f"http://127.0.0.1:{recorder.port}", "Content-Length: 0", *extra
        ),
    )
    assert status == 200, body  # OPTIONS * asks about the server itself (RFC 9110 9.3.7)
    assert recorder.seen == []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
async def test_methods_passthrough_does_not_relay_are_405(
    gateway, recorder, tmp_path: Path, method: str
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, body = await raw_request(
        gw.base_url, head(f"{method} /v1/models HTTP/1.1", f"http://127.0.0.1:{recorder.port}")
    )
    assert status == 405, body
    assert recorder.seen == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "a", "n": 1e999}',
        b'{"model": "a", "n": 123456789012345678901234567890}',
        b'{"model": "a\xff"}',
        b'{"model": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"model": "a", "x": "\\ud800"}',
    ],
)
async def test_odd_json_bodies_with_model_mapping_are_relayed_or_refused_never_500(
    gateway, recorder, tmp_path: Path, body: bytes
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, _ = await raw_request(
        gw.base_url,
        head(
            "POST /v1/chat/completions HTTP/1.1",
            f"http://127.0.0.1:{recorder.port}",
            "X-APEX-AI-PROXY-MAPPING: a#b",
            f"Content-Length: {len(body)}",
        ),
        body,
    )
    assert status == 200 or 400 <= status < 500
    if status == 200 and recorder.seen[0]["body"] != body:  # rewritten: the model was mapped
        assert orjson.loads(recorder.seen[0]["body"])["model"] == "b"


# --- item 4: the rest of the URL and header building ------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/v1/../admin",
        "/v1/%2e%2e/admin",
        "/v1/a%2F..%2Fadmin",
        "/v1/a%2f%2E%2e%2fadmin",
        "/v1/.%2e/admin",
        "/v1/%2E/x",
        "/v1/a%5C..%5Cadmin",
        "/v1/a%00b",
        "/v1/x?a=1#frag",
        "/v1/x#frag",
        "/v1\\..\\admin",
        "/v1/x%zz",
        "/v1/x%4",
    ],
)
async def test_dot_segments_encoded_slashes_and_fragments_cannot_escape_the_base_path(
    gateway, recorder, tmp_path: Path, target: str
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, _ = await raw_request(
        gw.base_url, head(f"GET {target} HTTP/1.1", f"http://127.0.0.1:{recorder.port}/api")
    )
    assert status == 400
    assert recorder.seen == []


async def test_percent_encoded_slash_and_query_are_relayed_unchanged_under_the_base_path(
    gateway, recorder, tmp_path: Path
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    target = "/v1/models/a%2Fb:generate@x?key=v%20w&f[a]=1&q=a/b?c"
    status, _ = await raw_request(
        gw.base_url, head(f"GET {target} HTTP/1.1", f"http://127.0.0.1:{recorder.port}/api/")
    )
    assert status == 200
    assert recorder.seen[0]["path_qs"] == "/api" + target


async def test_host_header_and_forwarding_headers_from_the_client_are_not_relayed(
    gateway, recorder, tmp_path: Path
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, _ = await raw_request(
        gw.base_url,
        "\r\n".join(
            [
                "GET /v1/models HTTP/1.1",
                "Host: 169.254.169.254",
                f"{PROVIDER_HEADER}: http://127.0.0.1:{recorder.port}",
                f"{TOKEN_HEADER}: {TOKEN}",
                "X-Forwarded-Host: 169.254.169.254",
                "X-Forwarded-For: 10.0.0.1",
                "Forwarded: host=169.254.169.254",
                "X-Real-IP: 10.0.0.1",
                "Connection: close",
            ]
        ),
    )
    assert status == 200
    headers = recorder.seen[0]["headers"]
    assert headers["Host"] == f"127.0.0.1:{recorder.port}"
    assert "169.254.169.254" not in str(headers)
    assert "10.0.0.1" not in str(headers)


@pytest.mark.parametrize(
    "provider",
    [
        "http://[fe80::1%25eth0]:80",
        "http://[fe80::1%eth0]:80",
        "http://[::ffff:127.0.0.1%1]:80",
        "http://127.0.0.1:{port}@127.0.0.1:1",
        "http://127.0.0.1:{port}#@127.0.0.1:1",
        "http://127.0.0.1:{port}\\@127.0.0.1:1",
    ],
)
async def test_ipv6_zone_ids_and_userinfo_in_the_provider_header_are_400(
    gateway, recorder, counter, tmp_path: Path, provider: str
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, _ = await raw_request(
        gw.base_url, head("GET /v1/models HTTP/1.1", provider.format(port=recorder.port))
    )
    assert status == 400
    assert recorder.seen == [] and counter.connections == 0


async def test_a_header_with_control_characters_is_refused_not_500(
    gateway, recorder, tmp_path: Path
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    status, body = await raw_request(
        gw.base_url,
        head("GET /v1/models HTTP/1.1", f"http://127.0.0.1:{recorder.port}", "X-Odd: a\x7fb"),
    )
    assert status == 400, body
    assert recorder.seen == []


@pytest.mark.parametrize(
    "extra",
    [
        (f"{TYPE_HEADER}: {'x' * 20000}",),
        (),  # with a 20 000-character host in the provider header below
    ],
)
async def test_huge_passthrough_headers_are_400_without_echoing_them(
    gateway, recorder, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    provider = f"http://127.0.0.1:{recorder.port}" if extra else f"http://{'h' * 20000}:1"
    status, body = await raw_request(gw.base_url, head("GET /v1/models HTTP/1.1", provider, *extra))
    assert status == 400
    assert len(body) < 1000
    assert recorder.seen == []
