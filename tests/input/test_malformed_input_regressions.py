"""One test per malformed-input finding of issue 10 (item 5): each answered 500 "Internal
gateway error" (OpenAI-shaped even on /v1/messages) before; now a 4xx or 502 in the client's
dialect, naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson
from fuzz_support import BODIES, CHAT, MESSAGES, assert_error_shape
from gateway_support import MODELS, TOKEN
from upstream_shapes import STREAMS, sse


async def _post(gw: Any, endpoint: str, body: dict) -> tuple[int, dict, dict[str, str]]:
    status, raw, headers = await gw.post(endpoint, json.dumps(body).encode())
    assert_error_shape(endpoint, status, raw) if status >= 400 else None
    return status, orjson.loads(raw), headers


def _chat(**changes: Any) -> dict:
    body = json.loads(json.dumps(CHAT))
    body["model"] = MODELS["anthropic"]
    body.update(changes)
    return body


def _messages_with_numeric_tool_result(model: str) -> dict:
    body = json.loads(json.dumps(MESSAGES))
    body["model"] = model
    body["messages"][2]["content"][0]["content"] = 42
    return body


async def test_chat_to_anthropic_with_string_tool_parameters_is_400(fuzz_gateway):
    body = _chat()
    body["tools"][0]["function"]["parameters"] = '{"type": "object"}'
    status, answer, _ = await _post(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400
    assert answer["error"]["param"] == "tools[0].function.parameters"
    assert "must be an object" in answer["error"]["message"]


async def test_chat_to_anthropic_with_numeric_tool_choice_function_is_400(fuzz_gateway):
    body = _chat(tool_choice={"type": "function", "function": 7})
    status, answer, _ = await _post(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400
    assert answer["error"]["param"] == "tool_choice.function"


async def test_messages_with_numeric_tool_result_content_is_400_in_anthropic_shape(fuzz_gateway):
    body = _messages_with_numeric_tool_result(MODELS["openai_chat"])
    status, answer, _ = await _post(fuzz_gateway, "/v1/messages", body)
    assert status == 400
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert "messages[2].content[0].content" in answer["error"]["message"]


async def test_count_tokens_with_numeric_tool_result_content_is_400_in_anthropic_shape(
    fuzz_gateway,
):
    body = _messages_with_numeric_tool_result(MODELS["openai_chat"])  # counted by an estimate
    del body["max_tokens"], body["stream"]
    status, answer, _ = await _post(fuzz_gateway, "/v1/messages/count_tokens", body)
    assert status == 400
    assert "messages[2].content[0].content" in answer["error"]["message"]


async def test_embeddings_on_an_anthropic_model_is_400_model_does_not_support_embeddings(
    fuzz_gateway,
):
    for dialect in ("anthropic", "gemini"):
        body = {**BODIES["/v1/embeddings"], "model": MODELS[dialect]}
        status, answer, _ = await _post(fuzz_gateway, "/v1/embeddings", body)
        assert status == 400, dialect
        assert "does not support embeddings" in answer["error"]["message"]


async def test_model_with_crlf_is_400_and_never_reaches_a_header(fuzz_gateway):
    for endpoint in ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"):
        body = {**BODIES[endpoint], "model": "m\r\nx-injected: yes#openai_chat"}
        status, answer, headers = await _post(fuzz_gateway, endpoint, body)
        assert status == 400, endpoint
        assert "control characters" in answer["error"]["message"]
        assert "x-injected" not in {name.lower() for name in headers}


async def test_model_longer_than_256_characters_is_400(fuzz_gateway):
    body = {**BODIES["/v1/chat/completions"], "model": "m" * 257}
    status, answer, _ = await _post(fuzz_gateway, "/v1/chat/completions", body)
    assert status == 400 and answer["error"]["param"] == "model"


async def test_request_nested_deeper_than_orjson_writes_is_400(fuzz_gateway):
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    for model in (MODELS["openai_chat"], MODELS["anthropic"]):  # relayed, translated
        body = _chat(model=model)
        body["tools"][0]["function"]["parameters"]["properties"]["city"]["enum"] = deep
        status, answer, _ = await _post(fuzz_gateway, "/v1/chat/completions", body)
        assert status == 400, model
        assert "deeper than" in answer["error"]["message"]


async def test_unexpected_error_on_messages_is_500_in_anthropic_shape_with_request_id(
    fuzz_gateway, monkeypatch
):
    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fuzz_gateway.app.services.dispatcher, "run", broken)
    body = {**BODIES["/v1/messages"], "model": MODELS["anthropic"]}
    status, answer, headers = await _post(fuzz_gateway, "/v1/messages", body)
    assert status == 500
    assert answer["type"] == "error" and answer["error"]["type"] == "api_error"
    assert headers["x-request-id"] in answer["error"]["message"]
    assert "a bug" not in answer["error"]["message"]  # no exception text, no traceback


async def test_upstream_answering_a_json_array_is_502_in_the_client_dialect(shapes):
    shapes.upstream.whole(b"[1,2,3]")
    for endpoint, dialect in [
        ("/v1/messages", "openai_chat"),  # translated
        ("/v1/messages", "anthropic"),  # relayed
        ("/v1/chat/completions", "gemini"),
        ("/v1/responses", "anthropic"),
    ]:
        status, raw = await shapes.ask(endpoint, dialect, stream=False)
        assert status == 502, (endpoint, dialect, raw)
        assert_error_shape(endpoint, status, raw)


async def test_upstream_stream_event_array_mid_stream_is_an_error_event(shapes):
    events = [sse(name, data) for name, data in STREAMS["anthropic"]]
    events[2] = sse("content_block_delta", b"[1,2,3]")
    shapes.upstream.stream(events)
    status, raw = await shapes.ask("/v1/chat/completions", "anthropic", stream=True)
    assert status == 200
    assert raw.count(b'data: {"error"') == 1
    assert b"wrong shape" in raw


async def test_upstream_stream_array_before_the_first_byte_fails_over(gateway, fake_upstream):
    from upstream_shapes import ShapeUpstream

    broken = await ShapeUpstream().start()
    try:
        broken.stream([sse("message_start", b"[1,2,3]")])
        healthy = await fake_upstream("healthy")
        providers = {
            "broken": {"kind": "anthropic", "base_url": broken.base_url, "api_keys": ["k1"]},
            "healthy": {"kind": "openai", "base_url": healthy.base_url, "api_keys": ["k2"]},
        }
        route = [{"provider": "broken", "model": "b"}, {"provider": "healthy", "model": "h"}]
        gw = await gateway(
            {
                "gateway_tokens": [TOKEN],
                "providers": providers,
                "models": {"m": {"strategy": "round-robin", "providers": route}},
                "retry": {"max_attempts": 2},
            }
        )
        async with aiohttp.ClientSession() as session:
            body = {**BODIES["/v1/chat/completions"], "model": "m", "stream": True}
            async with session.post(
                gw.base_url + "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {TOKEN}"},
            ) as resp:
                raw = await resp.read()
                assert resp.status == 200
                assert resp.headers["x-apex-provider"] == "healthy"
                assert resp.headers["x-apex-attempts"] == "2"
        assert b"[DONE]" in raw and b'"error"' not in raw
    finally:
        await broken.stop()


async def test_stored_response_with_a_list_as_item_type_is_400(fuzz_gateway):
    body = {**BODIES["/v1/responses"], "model": MODELS["responses"], "store": True}
    body["input"] = [{"type": ["message"], "role": "user", "content": "hi"}]
    status, answer, _ = await _post(fuzz_gateway, "/v1/responses", body)
    assert status == 400
    assert answer["error"]["param"] == "input[0].type"
