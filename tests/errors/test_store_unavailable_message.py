"""A /v1/responses 503 tells the client the store is down, never where it is: the Redis host,
port and the driver's words are the operator's, and go to the log."""

from __future__ import annotations

import logging

import openai
import pytest
from errors_support import provider
from fakes.openai_upstream import FakeUpstream
from fakes.ports import free_port


async def test_store_unavailable_503_names_no_host_or_port(gateway, caplog):
    port = free_port()  # nothing listens there
    chat = await FakeUpstream("chat").start()
    try:
        gw = await gateway(
            {
                "providers": {"chat": provider("openai", chat.base_url)},
                "models": {"m": {"providers": [{"provider": "chat"}]}},
                "responses_store": {
                    "backend": "redis",
                    "redis_url": f"redis://:hunter2@127.0.0.1:{port}/0",
                },
            }
        )
        client = gw.openai()
        caplog.set_level(logging.WARNING)
        with pytest.raises(openai.APIStatusError) as read:
            await client.responses.retrieve("resp_missing")
        with pytest.raises(openai.APIStatusError) as created:
            await client.responses.create(model="m", input="keep me")
    finally:
        await chat.stop()
    for caught in (read.value, created.value):
        assert caught.status_code == 503
        assert caught.body["code"] == "response_store_unavailable"
        message = caught.body["message"]
        assert "127.0.0.1" not in message and str(port) not in message, message
        assert "redis" not in message.lower() and "hunter2" not in message
    assert f"127.0.0.1:{port}" in caplog.text  # the operator still learns where
    assert "hunter2" not in caplog.text
