"""A fake Cloudflare AI Gateway on 127.0.0.1: records every request, answers like the provider.

    POST /v1/{account}/{gateway}/compat/chat/completions   an OpenAI chat completion
    POST /v1/{account}/{gateway}/anthropic/v1/messages     an Anthropic message

It checks nothing itself: tests assert on `requests` (path, query, headers, JSON body). `fail`
(status, message) makes the next answers errors whose message the test chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    json: Any


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.fail: tuple[int, str] | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeGateway:
        app = web.Application()
        app.router.add_post("/v1/{account}/{gateway}/compat/chat/completions", self._compat)
        app.router.add_post("/v1/{account}/{gateway}/anthropic/v1/messages", self._anthropic)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> Seen:
        raw = await request.read()
        seen = Seen(
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            orjson.loads(raw) if raw else None,
        )
        self.requests.append(seen)
        return seen

    def _error(self) -> web.Response | None:
        if self.fail is None:
            return None
        status, message = self.fail
        body = {"error": {"message": message, "type": "invalid_request_error"}}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    async def _compat(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        if (error := self._error()) is not None:
            return error
        answer = {
            "id": "chatcmpl-cf",
            "object": "chat.completion",
            "created": 1,
            "model": seen.json["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "via compat"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def _anthropic(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        if (error := self._error()) is not None:
            return error
        answer = {
            "id": "msg_cf",
            "type": "message",
            "role": "assistant",
            "model": seen.json["model"],
            "content": [{"type": "text", "text": "via anthropic"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
