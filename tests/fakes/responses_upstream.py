"""A fake native OpenAI Responses upstream: a real aiohttp server on 127.0.0.1.

    POST {prefix}/responses        Bearer key; streamed (full event sequence) or not

It keeps its own state like OpenAI does: a response created with `store` not false can be
continued with `previous_response_id`; an unknown one gets OpenAI's 400
`previous_response_not_found`. Every request is recorded (`requests`) before it is answered.

What a request gets: `behaviour(record)` if it returns something, else the next scripted
`queue(...)` entry, else `default`. A `Reply` lists output pieces::

    Reply(Text("hi"), Call("get_weather", '{"city": "Paris"}'), Think("plan", "enc-1"))
    Reply()                                  default text: "{name} ({model}) heard: {last user text}"
    Fail(status, message)                    an HTTP error in OpenAI's shape
    Reply(..., status="incomplete")          stops early (incomplete_details max_output_tokens)
    Break(after=4)                           streams the first 4 events of a Reply(), then the
                                             connection dies (a stream broken mid-way)
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True, slots=True)
class Text:
    text: str | None = None  # None: the "who answered" text


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    arguments: str = "{}"
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Think:
    summary: str
    encrypted: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    pieces: tuple[Text | Call | Think, ...] = ()
    status: str = "completed"

    def __init__(self, *pieces: Text | Call | Think, status: str = "completed") -> None:
        object.__setattr__(self, "pieces", pieces or (Text(),))
        object.__setattr__(self, "status", status)


@dataclass(frozen=True, slots=True)
class Fail:
    status: int
    message: str = "upstream failure"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Break:
    after: int = 4
    reply: Reply = Reply()


Action = Reply | Fail | Break


@dataclass(slots=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


def last_user_text(items: list[Any]) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


class FakeResponsesUpstream:
    def __init__(self, name: str = "native", *, prefix: str = "/v1") -> None:
        self.name = name
        self.prefix = prefix.rstrip("/")
        self.requests: list[Recorded] = []
        self.script: deque[Action] = deque()
        self.behaviour: Callable[[Recorded], Action | None] | None = None
        self.default: Action = Reply()
        self.state: dict[str, list[Any]] = {}  # response id -> whole conversation items
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def queue(self, *actions: Action) -> FakeResponsesUpstream:
        self.script.extend(actions)
        return self

    async def start(self) -> FakeResponsesUpstream:
        app = web.Application()
        app.router.add_post(self.prefix + "/responses", self._responses)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- serving -----------------------------------------------------------------------------

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        record = Recorded(request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        self.requests.append(record)
        if not record.key:
            return _error(401, "You didn't provide an API key.", "missing_api_key")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "Missing required parameter: 'model'.", "missing_required_parameter")
        history: list[Any] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in self.state:
                return _error(
                    400,
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_not_found",
                )
            history = list(self.state[previous])
        items = body.get("input")
        items = (
            [{"role": "user", "content": items}] if isinstance(items, str) else list(items or [])
        )
        action = self._next(record)
        if isinstance(action, Fail):
            return _error(action.status, action.message, action.code)
        conversation = history + items
        reply = action.reply if isinstance(action, Break) else action
        response = self._response(body, reply, last_user_text(conversation))
        if body.get("store") is not False:
            self.state[response["id"]] = conversation + response["output"]
        if body.get("stream") is True:
            cut = action.after if isinstance(action, Break) else None
            return await self._stream(request, response, cut)
        return web.Response(body=orjson.dumps(response), content_type="application/json")

    def _next(self, record: Recorded) -> Action:
        if self.behaviour is not None:
            action = self.behaviour(record)
            if action is not None:
                return action
        return self.script.popleft() if self.script else self.default

    def _response(self, body: dict, reply: Reply, heard: str) -> dict:
        output: list[dict] = []
        include = body.get("include") or []
        for piece in reply.pieces:
            if isinstance(piece, Text):
                text = (
                    piece.text
                    if piece.text is not None
                    else f"{self.name} ({body['model']}) heard: {heard}"
                )
                output.append(
                    {
                        "id": _id("msg_"),
                        "type": "message",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                )
            elif isinstance(piece, Call):
                output.append(
                    {
                        "id": _id("fc_"),
                        "type": "function_call",
                        "status": "completed",
                        "call_id": piece.call_id or _id("call_"),
                        "name": piece.name,
                        "arguments": piece.arguments,
                    }
                )
            else:
                item: dict[str, Any] = {
                    "id": _id("rs_"),
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": piece.summary}],
                }
                if "reasoning.encrypted_content" in include:
                    item["encrypted_content"] = piece.encrypted or "enc-" + secrets.token_hex(4)
                output.append(item)
        words = sum(len(orjson.dumps(i)) for i in output) // 20
        return {
            "id": _id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": reply.status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if reply.status == "incomplete"
            else None,
            "instructions": body.get("instructions"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "usage": {
                "input_tokens": 11,
                "input_tokens_details": {"cached_tokens": 3},
                "output_tokens": words + 1,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 12 + words,
            },
        }

    async def _stream(
        self, request: web.Request, final: dict, cut: int | None = None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            await self._events(resp, final, cut)
        except _Cut:
            await asyncio.sleep(0.01)
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    async def _events(self, resp: web.StreamResponse, final: dict, cut: int | None) -> None:
        seq = itertools.count()

        async def send(kind: str, **payload: Any) -> None:
            number = next(seq)
            if number == cut:
                raise _Cut
            data = {"type": kind, "sequence_number": number, **payload}
            await resp.write(
                b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
            )

        shell = {**final, "status": "in_progress", "output": [], "usage": None}
        await send("response.created", response=shell)
        await send("response.in_progress", response=shell)
        for index, item in enumerate(final["output"]):
            where = {"item_id": item["id"], "output_index": index}
            if item["type"] == "message":
                text = item["content"][0]["text"]
                await send(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                part = {"type": "output_text", "text": "", "annotations": []}
                await send("response.content_part.added", **where, content_index=0, part=part)
                for word in text.split(" "):
                    chunk = word if word == text.split(" ")[0] else " " + word
                    await send(
                        "response.output_text.delta",
                        **where,
                        content_index=0,
                        delta=chunk,
                        logprobs=[],
                    )
                await send(
                    "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
                )
                await send(
                    "response.content_part.done",
                    **where,
                    content_index=0,
                    part={**part, "text": text},
                )
            elif item["type"] == "function_call":
                await send(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                await send(
                    "response.function_call_arguments.delta", **where, delta=item["arguments"]
                )
                await send(
                    "response.function_call_arguments.done",
                    **where,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            else:
                await send(
                    "response.output_item.added", output_index=index, item={**item, "summary": []}
                )
                text = item["summary"][0]["text"]
                await send(
                    "response.reasoning_summary_part.added",
                    **where,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
                await send(
                    "response.reasoning_summary_text.delta", **where, summary_index=0, delta=text
                )
                await send(
                    "response.reasoning_summary_text.done", **where, summary_index=0, text=text
                )
                await send(
                    "response.reasoning_summary_part.done",
                    **where,
                    summary_index=0,
                    part={"type": "summary_text", "text": text},
                )
            await send("response.output_item.done", output_index=index, item=item)
        await send(f"response.{final['status']}", response=final)


class _Cut(Exception):
    """Raised by a Break's stream where the connection is to die."""


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
