"""A Redis restart under a running gateway: the first call afterwards must not fail.

The pooled connection is dead after the restart; the call must retry once on a fresh one.
Uses its own redis-server (with an append-only file, so data survives the restart), never the
shared Redis.
"""

from __future__ import annotations

import uuid

from fakes.redis_server import RedisServer
from responses_support import ToolCallingChatUpstream, chat_provider, responses_config


async def test_first_call_after_a_redis_restart_succeeds(gateway, tmp_path):
    chat = await ToolCallingChatUpstream("chat").start()
    redis_server = await RedisServer(tmp_path / "redis", persist=True).start()
    try:
        store = {
            "backend": "redis",
            "redis_url": redis_server.url,
            "key_prefix": f"apex-test:{uuid.uuid4().hex}:",
        }
        gw = await gateway(responses_config({"oa": chat_provider(chat)}, {"m": ["oa"]}, store))
        client = gw.openai()
        first = await client.responses.create(model="m", input="remember me")

        await redis_server.restart()
        again = await client.responses.retrieve(first.id)  # the first command after the restart
        assert again.output_text == first.output_text

        await redis_server.restart()
        second = await client.responses.create(
            model="m", input="and now?", previous_response_id=first.id
        )
        assert second.previous_response_id == first.id
        assert gw.app.services.conversations.reachable
    finally:
        await redis_server.stop()
        await chat.stop()
