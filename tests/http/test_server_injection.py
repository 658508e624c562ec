"""No response header name or value ever carries CR, LF or NUL; names are tokens. Checked at the
one place headers are written (Response._head, used by StreamResponse.prepare too)."""

from __future__ import annotations

import orjson
import pytest
from gateway_config import MESSAGES, config, openai_provider
from http_support import exchange, parse_responses

from apex_ai_proxy.http import Response, StreamResponse

BAD_HEADERS = {
    "x-crlf": "v\r\nx-injected: yes",
    "x-lf": "v\nx-injected-lf: yes",
    "x-nul": "a\x00b",
    "bad name": "v",
    "x-bad\r\nx-injected-name": "v",
    "x-ok": "fine",
}


def _with_bad_headers(request):
    response = Response(200, b"ok")
    response.headers.update(BAD_HEADERS)
    response.raw_headers.append(("x-raw", "r\r\nx-injected-raw: yes"))
    return response


def _assert_only_safe_headers(raw: bytes) -> None:
    head = raw.partition(b"\r\n\r\n")[0]
    assert b"injected" not in head
    assert b"\x00" not in head
    [reply] = parse_responses(raw)
    names = [name for name, _ in reply.headers]
    assert "x-ok" in names
    for name in ("x-crlf", "x-lf", "x-nul", "bad name", "x-raw"):
        assert name not in names


async def test_response_header_with_crlf_or_nul_is_never_written(echo_server):
    server = await echo_server(answer=_with_bad_headers)
    raw = await exchange(server.port, b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    _assert_only_safe_headers(raw)


async def test_stream_response_header_with_crlf_is_never_written(echo_server):
    async def stream(request):
        response = StreamResponse(200, headers=dict(BAD_HEADERS))
        await response.prepare(request)
        await response.write(b"data")
        return response

    server = await echo_server()
    server.server.not_found = stream
    raw = await exchange(server.port, b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    _assert_only_safe_headers(raw)
    assert parse_responses(raw)[0].body == b"data"


async def test_model_name_with_crlf_never_becomes_a_response_header(gateway, fake_upstream):
    up = await fake_upstream("e")
    gw = await gateway(config({"e": openai_provider(up)}, {}))
    body = orjson.dumps({"model": "m\r\nx-injected: yes#e", "messages": MESSAGES})
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
    )
    raw = await exchange(int(gw.base_url.rsplit(":", 1)[1]), request)
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 ")
    assert b"x-injected" not in head.lower()
    assert b"\r\n\r\n" in raw  # a whole answer came back


def _head(response: Response) -> bytes:
    return response.encode(True).partition(b"\r\n\r\n")[0]


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nx-injected: yes", "a\x00b", "\n"])
@pytest.mark.parametrize("where", ["headers", "raw_headers"])
def test_one_bad_header_value_alone_is_dropped(value, where):
    # each bad value on its own, next to good headers (the common fast path must catch it)
    response = Response(200, b"ok", content_type="text/plain")
    response.headers["x-good"] = "yes"
    if where == "headers":
        response.headers["x-bad"] = value
    else:
        response.raw_headers.append(("x-bad", value))
    head = _head(response)
    assert b"x-bad" not in head and b"injected" not in head and b"\x00" not in head
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    assert b"content-type: text/plain\r\n" in head and b"x-good: yes" in head


def test_header_values_that_are_not_str_are_written_and_still_checked():
    response = Response(200, b"ok")
    response.headers["x-count"] = 3
    response.raw_headers.append(("x-raw", "r"))
    assert b"x-count: 3\r\nx-raw: r" in _head(response)
    response.headers["x-bad"] = "a\r\nx-injected: yes"
    head = _head(response)
    assert b"injected" not in head and b"x-count: 3" in head


def test_raw_header_with_a_bad_name_is_dropped():
    response = Response(200, b"ok")
    response.raw_headers.append(("x-bad\r\nx-injected", "v"))
    response.raw_headers.append(("x-ok", "v"))
    head = _head(response)
    assert b"injected" not in head and b"x-ok: v" in head
