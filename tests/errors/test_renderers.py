"""The one renderer per client dialect, unit by unit: shapes the socket tests do not reach."""

from __future__ import annotations

import orjson

from apex_ai_proxy.dialects.responses.stream_position import stream_position
from apex_ai_proxy.errors import GatewayError, error_body, stream_error_event


def data_of(frame: bytes) -> dict:
    lines = frame.decode().split("\n")
    [data] = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    assert frame.endswith(b"\n\n")
    return orjson.loads(data)


def test_gemini_stream_error_is_one_data_event_in_the_whole_body_shape():
    frame = stream_error_event("gemini", 429, "slow down")
    assert frame.startswith(b"data: ") and frame.count(b"\n\n") == 1
    body = {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    assert data_of(frame) == body
    assert orjson.loads(error_body("gemini", GatewayError("slow down", status=429))) == body


def test_gemini_status_names_for_unlisted_statuses():
    assert data_of(stream_error_event("gemini", 418, "x"))["error"]["status"] == "INVALID_ARGUMENT"
    assert data_of(stream_error_event("gemini", 599, "x"))["error"]["status"] == "INTERNAL"


def test_anthropic_stream_error_event_is_the_whole_body_under_event_error():
    frame = stream_error_event("anthropic", 529, "Overloaded")
    assert frame.startswith(b"event: error\n")
    assert data_of(frame) == orjson.loads(
        error_body("anthropic", GatewayError("Overloaded", status=529))
    )
    assert data_of(frame)["error"]["type"] == "overloaded_error"


def test_openai_chat_stream_error_types_by_status():
    assert data_of(stream_error_event("openai_chat", 429, "x"))["error"] == {
        "message": "x",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert data_of(stream_error_event("openai_chat", 400, "x"))["error"]["code"] is None


def test_relayed_responses_stream_position_without_its_created_event():
    """A response.created longer than the kept head: the id is still the client's."""
    head = b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
    head += b'"response":{"id":"resp_abc123","object":"response","instructions":"' + b"x" * 100
    tail = b'data: {"type":"response.output_text.delta","sequence_number":41,"delta":"y"}\n\n'
    response, following = stream_position(head, tail)
    assert (response["id"], following) == ("resp_abc123", 42)
    event = data_of(
        stream_error_event("responses", 502, "cut", response=response, sequence_number=following)
    )
    assert event["type"] == "response.failed" and event["sequence_number"] == 42
    assert event["response"]["status"] == "failed"
    assert event["response"]["error"] == {"code": "server_error", "message": "cut"}
