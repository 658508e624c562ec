"""Usage in an Anthropic client's stream comes from an OpenAI upstream's usage chunk."""

from __future__ import annotations

from translation_support import HELLO, MODEL, Turn, anthropic_client, one_model


async def test_anthropic_stream_usage_from_openai_upstream(gateway, openai_fake):
    usage = {"prompt_tokens": 123, "completion_tokens": 45, "total_tokens": 168}
    openai_fake.push_turn(Turn(content="counted answer", usage=usage))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        message = await stream.get_final_message()

    assert (message.usage.input_tokens, message.usage.output_tokens) == (123, 45)
    # The gateway asks for the usage chunk it needs; the client cannot ask in its dialect.
    assert openai_fake.requests[0].body["stream_options"] == {"include_usage": True}
