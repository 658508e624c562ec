"""The HTTP server's own refusals (before any handler runs) come from the one renderer: the
gateway hands it `errors.protocol_error_body`, and http/ itself knows no API shape."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import orjson
import pytest
from errors_support import gateway_for

from apex_ai_proxy.errors import protocol_error_body
from apex_ai_proxy.http import HttpServer, PathRouter, Response

TOO_MANY_HEADERS = {f"x-filler-{i}": "x" for i in range(150)}  # the limit is 100 lines
HEADERS_MESSAGE = "Request header fields are too large."


async def raw_exchange(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    head_part, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in head_part.split(b"\r\n"):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def too_many_headers(path: str) -> bytes:
    lines = "".join(f"{name}: x\r\n" for name in TOO_MANY_HEADERS)
    return f"POST {path} HTTP/1.1\r\nhost: x\r\n{lines}content-length: 0\r\n\r\n".encode()


async def test_protocol_error_431_reaches_openai_clients_in_the_one_openai_shape(
    gateway, broken, tmp_path
):
    gw = await gateway_for(gateway, await broken("openai"), tmp_path, "openai")
    with pytest.raises(openai.APIStatusError) as caught:
        await gw.openai().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_headers=TOO_MANY_HEADERS
        )
    assert caught.value.status_code == 431
    assert caught.value.body == {
        "message": HEADERS_MESSAGE,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert caught.value.response.headers["content-type"] == "application/json"


async def test_protocol_error_431_reaches_anthropic_clients_in_the_anthropic_shape(
    gateway, broken, tmp_path
):
    gw = await gateway_for(gateway, await broken("anthropic"), tmp_path, "anthropic")
    client = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key="client-token", max_retries=0)
    try:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model="m",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers=TOO_MANY_HEADERS,
            )
    finally:
        await client.close()
    assert caught.value.status_code == 431
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": HEADERS_MESSAGE},
    }


async def test_protocol_error_on_a_gemini_path_is_in_googles_shape(gateway, broken, tmp_path):
    gw = await gateway_for(gateway, await broken("openai"), tmp_path, "openai")
    port = int(gw.base_url.rsplit(":", 1)[1])
    path = "/v1beta/models/m:generateContent"
    status, headers, body = await raw_exchange(port, too_many_headers(path))
    assert (status, headers["content-type"]) == (431, "application/json")
    assert orjson.loads(body) == {
        "error": {"code": 431, "message": HEADERS_MESSAGE, "status": "INVALID_ARGUMENT"}
    }


async def test_unsupported_version_on_v1_messages_is_the_clients_fault_not_an_api_error(
    gateway, broken, tmp_path
):
    gw = await gateway_for(gateway, await broken("openai"), tmp_path, "openai")
    port = int(gw.base_url.rsplit(":", 1)[1])
    status, _, body = await raw_exchange(port, b"GET /v1/messages HTTP/2.0\r\nhost: x\r\n\r\n")
    assert status == 505
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"


async def test_http_server_without_a_renderer_answers_plain_text():
    async def handle(request):
        return Response(200, b"ok")

    server = HttpServer(PathRouter(), not_found=handle, method_not_allowed=handle)
    port = await server.listen("127.0.0.1", 0)
    try:
        status, headers, body = await raw_exchange(port, too_many_headers("/v1/chat/completions"))
    finally:
        await server.shutdown(0.5)
    assert (status, headers["content-type"]) == (431, "text/plain; charset=utf-8")
    assert body == HEADERS_MESSAGE.encode() + b"\n"


@pytest.mark.parametrize(
    ("status", "path", "expected"),
    [
        (413, "/v1/responses", {"type": "invalid_request_error", "code": "request_too_large"}),
        (500, "/v1/chat/completions", {"type": "server_error", "code": None}),
        (501, "/v1/embeddings", {"type": "invalid_request_error", "code": None}),
    ],
)
def test_protocol_error_body_openai_types(status, path, expected):
    error = orjson.loads(protocol_error_body(status, "m", path))["error"]
    assert {"type": error["type"], "code": error["code"]} == expected
