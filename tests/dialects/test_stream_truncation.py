"""An OpenAI upstream stream cut off cleanly (no finish, no [DONE]) is an error to the client,
not a short answer."""

from __future__ import annotations

import anthropic
import pytest
from fakes.openai_upstream import BreakStream
from translation_support import HELLO, MODEL, anthropic_client, one_model


async def test_silent_truncation_of_openai_stream_is_anthropic_error_event(gateway, openai_fake):
    openai_fake.queue(BreakStream(after=3, clean_eof=True))  # no finish chunk, no [DONE]
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
            await stream.get_final_message()

    assert caught.value.body["error"]["type"] == "api_error"
