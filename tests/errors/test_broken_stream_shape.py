"""The same upstream stream breaking mid-way reaches each client dialect in that dialect's one
error event, whether the gateway translated the stream or relayed it as it came (issue 12).

Each test breaks two streams over real sockets: one from an upstream of the client's own
dialect (relayed) and one from another dialect (translated), reads both with the official SDK,
and asserts the exact shape, the same for both paths."""

from __future__ import annotations

import anthropic
import openai
from errors_support import gateway_for

MESSAGES = [{"role": "user", "content": "say something long"}]


async def chat_error(gw) -> openai.APIError:
    stream = await gw.openai().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    try:
        async for _ in stream:
            pass
    except openai.APIError as exc:
        assert not isinstance(exc, openai.APIConnectionError), repr(exc)
        return exc
    raise AssertionError("the broken stream ended as if it were complete")


async def test_broken_stream_reaches_openai_chat_clients_in_one_error_shape(
    gateway, broken, tmp_path
):
    bodies = {}
    for upstream in ("openai", "anthropic"):  # relayed, translated
        gw = await gateway_for(gateway, await broken(upstream), tmp_path, upstream)
        exc = await chat_error(gw)
        assert exc.message
        bodies[upstream] = exc.body
        assert exc.body == {
            "message": exc.message,
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }, upstream
    assert bodies["openai"].keys() == bodies["anthropic"].keys()


async def responses_events(gw) -> list:
    stream = await gw.openai().responses.create(model="m", input="say something long", stream=True)
    return [event async for event in stream]


async def test_broken_stream_reaches_responses_clients_in_one_error_shape(
    gateway, broken, tmp_path
):
    for upstream in ("responses", "openai"):  # relayed, translated
        gw = await gateway_for(gateway, await broken(upstream), tmp_path, upstream)
        events = await responses_events(gw)
        first, last = events[0], events[-1]
        assert first.type == "response.created", upstream
        assert last.type == "response.failed", [e.type for e in events]
        assert last.sequence_number == events[-2].sequence_number + 1, upstream
        assert [e.type for e in events].count("response.failed") == 1
        failed = last.response
        assert failed.id == first.response.id, upstream
        assert failed.status == "failed"
        assert failed.error is not None and failed.error.code == "server_error"
        assert failed.error.message, upstream
        # The stored copy says what the client was told.
        stored = await gw.openai().responses.retrieve(failed.id)
        assert (stored.status, stored.error.code) == ("failed", "server_error"), upstream


async def messages_error(gw) -> anthropic.APIStatusError:
    client = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key="client-token", max_retries=0)
    try:
        stream = await client.messages.create(
            model="m", max_tokens=100, messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass
    except anthropic.APIStatusError as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError("the broken stream ended as if it were complete")


async def test_broken_stream_reaches_anthropic_clients_in_one_error_shape(
    gateway, broken, tmp_path
):
    for upstream in ("anthropic", "openai"):  # relayed, translated
        gw = await gateway_for(gateway, await broken(upstream), tmp_path, upstream)
        exc = await messages_error(gw)
        assert exc.status_code == 200  # the error came as the stream's event, not as an answer
        body = exc.body
        assert isinstance(body, dict), upstream
        assert body == {
            "type": "error",
            "error": {"type": "api_error", "message": body["error"]["message"]},
        }, upstream
        assert body["error"]["message"]
