"""Request targets, HTTP versions and smuggling shapes: what is served, what is refused, and that
a refused request never reaches a handler."""

from __future__ import annotations

from http_support import exchange, parse_responses, statuses


async def _one(server, request: bytes):
    [reply] = parse_responses(await exchange(server.port, request))
    return reply


# --- targets (RFC 9112 §3.2) -------------------------------------------------------------------


async def test_absolute_form_target_is_reduced_to_its_path_and_query(echo_server):
    server = await echo_server()
    reply = await _one(
        server,
        b"GET http://example.com:8080/v1/models?a=1 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    assert reply.status == 200
    assert reply.json()["target"] == "/v1/models?a=1"
    assert server.calls[0].path == "/v1/models"


async def test_absolute_form_without_a_path_becomes_slash(echo_server):
    server = await echo_server()
    reply = await _one(
        server, b"GET http://example.com?q HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    )
    assert reply.json()["target"] == "/?q"


async def test_absolute_form_with_userinfo_is_400(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET http://u:p@example.com/ HTTP/1.1\r\nhost: a\r\n\r\n")
    assert reply.status == 400
    assert server.calls == []


async def test_asterisk_form_answers_options_directly(echo_server):
    server = await echo_server()
    reply = await _one(server, b"OPTIONS * HTTP/1.1\r\nhost: a\r\n\r\n")
    assert reply.status == 200
    assert "POST" in reply.header("allow")
    assert server.calls == []


async def test_asterisk_form_with_another_method_is_400(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET * HTTP/1.1\r\nhost: a\r\n\r\n")
    assert reply.status == 400
    assert server.calls == []


async def test_connect_gets_501_without_running_a_handler(echo_server):
    server = await echo_server()
    request = (
        b"CONNECT @127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n"
        b"x-apex-ai-proxy-provider: http://127.0.0.1:1\r\n\r\n"
    )
    reply = await _one(server, request)
    assert reply.status == 501
    assert reply.header("connection") == "close"
    assert server.calls == []


async def test_connect_with_authority_form_gets_501_without_running_a_handler(echo_server):
    server = await echo_server()
    reply = await _one(server, b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com\r\n\r\n")
    assert reply.status == 501
    assert server.calls == []


async def test_upgrade_request_gets_501_without_running_a_handler(echo_server):
    server = await echo_server()
    request = b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
    reply = await _one(server, request)
    assert reply.status == 501
    assert server.calls == []


async def test_target_that_is_no_form_at_all_is_400(echo_server):
    server = await echo_server()
    for target in (b"v1/models", b"ftp://example.com/x", b"http://", b"http:///x"):
        reply = await _one(server, b"GET " + target + b" HTTP/1.1\r\nhost: a\r\n\r\n")
        assert reply.status == 400, target
    assert server.calls == []


# --- versions (issue 10 #14) ---------------------------------------------------------------------


async def test_request_line_without_a_version_gets_400(echo_server):
    server = await echo_server()
    received = await exchange(server.port, b"GET /\r\n\r\n")
    assert statuses(received) in ([400], [505])
    assert server.calls == []


async def test_http_2_0_request_line_gets_505(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET / HTTP/2.0\r\nhost: a\r\n\r\n")
    assert reply.status == 505
    assert reply.header("connection") == "close"
    assert server.calls == []


async def test_http_1_0_is_answered_and_closed(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET /x HTTP/1.0\r\n\r\n")
    assert reply.status == 200
    assert reply.header("connection") == "close"


# --- smuggling shapes (RFC 9112 §6.1, §6.3) ------------------------------------------------------


async def test_content_length_with_transfer_encoding_is_refused(echo_server):
    server = await echo_server()
    request = (
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n"
    )
    assert statuses(await exchange(server.port, request)) == [400]
    assert server.calls == []


async def test_differing_duplicate_content_length_is_refused(echo_server):
    server = await echo_server()
    request = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ncontent-length: 5\r\n\r\nabcde"
    assert statuses(await exchange(server.port, request)) == [400]
    assert server.calls == []


async def test_invalid_chunk_size_is_refused(echo_server):
    server = await echo_server()
    for size in (b"zz", b"-1", b"0x5", b"ffffffffffffffffff"):
        request = (
            b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
            + size
            + b"\r\nabc\r\n"
        )
        assert statuses(await exchange(server.port, request)) == [400], size
    assert server.calls == []


async def test_obs_fold_header_is_refused(echo_server):
    server = await echo_server()
    request = b"GET /x HTTP/1.1\r\nhost: a\r\nx-a: one\r\n two\r\n\r\n"
    assert statuses(await exchange(server.port, request)) == [400]
    assert server.calls == []


async def test_transfer_encoding_other_than_chunked_is_refused(echo_server):
    server = await echo_server()
    for coding in (b"gzip", b"gzip, chunked", b"chunked, gzip", b"chunked, chunked"):
        request = b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: " + coding
        request += b"\r\n\r\n0\r\n\r\n"
        assert statuses(await exchange(server.port, request)) in ([400], [501]), coding
    assert server.calls == []


async def test_chunked_body_with_extensions_and_trailers_is_read(echo_server):
    server = await echo_server()
    request = (
        b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n"
    )
    reply = await _one(server, request)
    assert reply.status == 200
    assert server.calls[0].body == b"abcde"


# --- one error shape ---------------------------------------------------------------------------


async def test_protocol_errors_use_the_openai_error_shape(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET /v1/chat/completions HTTP/2.0\r\n\r\n")
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert reply.header("content-type") == "application/json"


async def test_protocol_errors_on_v1_messages_use_the_anthropic_error_shape(echo_server):
    server = await echo_server()
    reply = await _one(server, b"GET /v1/messages HTTP/2.0\r\n\r\n")
    assert reply.status == 505
    body = reply.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


async def test_head_answer_has_a_length_but_no_body(echo_server):
    server = await echo_server()
    raw = await exchange(server.port, b"HEAD /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length: " in head
    assert rest == b""


async def test_trailer_fields_are_not_merged_into_the_request_headers(echo_server):
    server = await echo_server()
    request = (
        b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        b"1\r\na\r\n0\r\nauthorization: Bearer smuggled\r\n\r\n"
    )
    reply = await _one(server, request)
    assert reply.status == 200
    assert "authorization" not in reply.json()["headers"]


async def test_connect_with_an_origin_form_target_gets_501_without_running_a_handler(echo_server):
    server = await echo_server()
    reply = await _one(server, b"CONNECT / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\n\r\nx")
    assert reply.status == 501
    assert server.calls == []
