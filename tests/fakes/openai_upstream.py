"""A fake OpenAI-compatible (and Azure OpenAI) upstream: a real aiohttp server on 127.0.0.1.

Routes (``prefix`` defaults to ``/v1``)::

    POST {prefix}/chat/completions                                  Bearer key
    POST {prefix}/embeddings                                        Bearer key
    GET  {prefix}/models                                            Bearer key
    POST /openai/deployments/{dep}/chat/completions?api-version=…   api-key header
    POST /openai/deployments/{dep}/embeddings?api-version=…         api-key header

Every request is recorded (`FakeUpstream.requests`) before anything else happens, so a test can
assert what reached the upstream (path, query, headers, JSON body, the key it carried) even when
the scripted answer is a failure. The key is only ever reported through the record, never in a
response body.

What each request gets is decided, in this order, by `behaviour` (a function of the recorded
request returning an action or None), then the `script` queue, then `default`. Actions::

    Reply(content=None, delay=0, token_delay=0)   success, streamed when the request asks
    Fail(status, message, headers)                 an HTTP error with an OpenAI error body
    Hang(seconds)                                  no answer at all for that long
    Drop()                                         close the connection without answering
    BreakStream(after=2, clean_eof=False)          send `after` frames, then drop (or end early)

with helpers `rate_limited(retry_after=…)`, `rate_limited_until(seconds)` (HTTP-date),
`server_error(status)`, `auth_error(status)`, `bad_request(message)`.

A successful answer says who answered: its content is ``"{name} ({model}) heard: {last user
text}"`` (see `FakeUpstream.content_for`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson
from aiohttp import web

# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    content: str | None = None  # None: the default "who answered" text
    delay: float = 0.0  # before the response headers
    token_delay: float = 0.0  # between streamed chunks


@dataclass(frozen=True, slots=True)
class Fail:
    status: int
    message: str = "upstream failure"
    error_type: str = "server_error"
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hang:
    seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Drop:
    pass


@dataclass(frozen=True, slots=True)
class BreakStream:
    """A stream that stops after `after` SSE frames (the role frame counts; 0: headers only).

    By default the connection is dropped; with `clean_eof` the HTTP response ends properly but
    without the finish chunk and `[DONE]`: a silent truncation.
    """

    after: int = 2
    clean_eof: bool = False


Action = Reply | Fail | Hang | Drop | BreakStream


def rate_limited(retry_after: float | None = None, message: str = "Rate limit reached") -> Fail:
    headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
    return Fail(429, message, "rate_limit_error", "rate_limit_exceeded", headers)


def rate_limited_until(seconds_from_now: float, message: str = "Rate limit reached") -> Fail:
    """429 whose Retry-After is an HTTP-date `seconds_from_now` in the future."""
    when = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    headers = {"Retry-After": format_datetime(when, usegmt=True)}
    return Fail(429, message, "rate_limit_error", "rate_limit_exceeded", headers)


def server_error(status: int = 500, message: str = "The server had an error") -> Fail:
    return Fail(status, message, "server_error")


def auth_error(status: int = 401, message: str = "Incorrect API key provided") -> Fail:
    error_type = "invalid_request_error" if status == 401 else "permission_error"
    return Fail(status, message, error_type, "invalid_api_key" if status == 401 else None)


def bad_request(message: str = "Invalid value for 'temperature'") -> Fail:
    return Fail(400, message, "invalid_request_error", "invalid_value")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- records ---------------------------------------------------------------------------------


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes
    route: str  # "chat" | "embeddings" | "models" | "unknown"
    azure_deployment: str | None = None
    at: float = field(default_factory=time.monotonic)  # arrival, to order requests across fakes

    @property
    def key(self) -> str | None:
        """The credential the upstream received (Bearer token or Azure `api-key`)."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("api-key")

    @property
    def model(self) -> str | None:
        if self.azure_deployment is not None:
            return self.azure_deployment
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


# --- the server ------------------------------------------------------------------------------


class FakeUpstream:
    """One fake upstream. Use `async with FakeUpstream("a") as fake:`; then `fake.base_url`."""

    def __init__(
        self,
        name: str = "fake",
        *,
        prefix: str = "/v1",
        accepted_keys: set[str] | None = None,
        models: list[str] | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix.rstrip("/")
        self.accepted_keys = accepted_keys  # None: any non-empty key is accepted
        self.models = models or ["gpt-4o-mini", "text-embedding-3-small"]
        self.requests: list[RecordedRequest] = []
        self.script: deque[Action] = deque()
        self.behaviour: Callable[[RecordedRequest], Action | None] | None = None
        self.default: Action = Reply()
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # --- scripting -----------------------------------------------------------------------------

    def queue(self, *actions: Action) -> FakeUpstream:
        self.script.extend(actions)
        return self

    def content_for(self, model: str | None, last_user_text: str) -> str:
        return f"{self.name} ({model}) heard: {last_user_text}"

    @property
    def base_url(self) -> str:
        """Root URL plus prefix: what an OpenAI-compatible provider's `base_url` is set to."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def root_url(self) -> str:
        """Root URL without prefix: what an Azure provider's `base_url` is set to."""
        return f"http://127.0.0.1:{self.port}"

    def keys_seen(self) -> list[str | None]:
        return [r.key for r in self.requests]

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_post(self.prefix + "/chat/completions", self._chat)
        app.router.add_post(self.prefix + "/embeddings", self._embeddings)
        app.router.add_get(self.prefix + "/models", self._models)
        app.router.add_post("/openai/deployments/{dep}/chat/completions", self._azure_chat)
        app.router.add_post("/openai/deployments/{dep}/embeddings", self._azure_embeddings)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handlers ------------------------------------------------------------------------------

    async def _record(
        self, request: web.Request, route: str, dep: str | None = None
    ) -> RecordedRequest:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            raw=raw,
            route=route,
            azure_deployment=dep,
        )
        self.requests.append(record)
        return record

    def _next_action(self, record: RecordedRequest) -> Action:
        if self.behaviour is not None:
            action = self.behaviour(record)
            if action is not None:
                return action
        if self.script:
            return self.script.popleft()
        return self.default

    def _auth_problem(self, record: RecordedRequest, azure: bool) -> web.Response | None:
        key = record.key
        if azure and "api-key" not in record.headers:
            return _error(
                401, "Access denied due to missing api-key header", "invalid_request_error", "401"
            )
        if not key:
            return _error(
                401, "You didn't provide an API key", "invalid_request_error", "missing_api_key"
            )
        if self.accepted_keys is not None and key not in self.accepted_keys:
            return _error(
                401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        if azure and "api-version" not in record.query:
            return _error(
                404, "Resource not found (api-version missing)", "invalid_request_error", "404"
            )
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "chat")
        return await self._serve(request, record, azure=False)

    async def _azure_chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "chat", request.match_info["dep"])
        return await self._serve(request, record, azure=True)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "embeddings")
        return await self._serve(request, record, azure=False)

    async def _azure_embeddings(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "embeddings", request.match_info["dep"])
        return await self._serve(request, record, azure=True)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "models")
        problem = self._auth_problem(record, azure=False)
        if problem is not None:
            return problem
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": self.name} for m in self.models
        ]
        return _json(200, {"object": "list", "data": data})

    async def _serve(
        self, request: web.Request, record: RecordedRequest, azure: bool
    ) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            problem = self._auth_problem(record, azure)
            if problem is not None:
                return problem
            action = self._next_action(record)
            return await self._perform(request, record, action)
        finally:
            self.in_flight -= 1

    async def _perform(
        self, request: web.Request, record: RecordedRequest, action: Action
    ) -> web.StreamResponse:
        if isinstance(action, Fail):
            return _error(
                action.status, action.message, action.error_type, action.code, action.headers
            )
        if isinstance(action, Hang):
            await self._sleep(action.seconds)
            return _error(504, "fake upstream stopped hanging", "server_error")
        if isinstance(action, Drop):
            _drop(request)
            return web.Response(status=500)  # never reaches the client: the socket is gone
        if not isinstance(record.body, dict):
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if isinstance(action, Reply) and action.delay:
            await self._sleep(action.delay)
        if record.route == "embeddings":
            return _json(200, self._embedding_body(record))
        reply = action if isinstance(action, Reply) else Reply()
        content = (
            reply.content
            if reply.content is not None
            else self.content_for(record.model, _last_user_text(record.body))
        )
        if record.stream:
            cut = action if isinstance(action, BreakStream) else BreakStream(after=-1)
            after = cut.after if cut.after >= 0 else None
            return await self._stream(
                request, record, content, reply.token_delay, after, cut.clean_eof
            )
        return _json(200, self._completion_body(record, content))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- bodies ----------------------------------------------------------------------------------

    def _completion_body(self, record: RecordedRequest, content: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.name}-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(record.body, content),
        }

    async def _stream(
        self,
        request: web.Request,
        record: RecordedRequest,
        content: str,
        token_delay: float,
        break_after: int | None,
        clean_eof: bool = False,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{self.name}-{len(self.requests)}"
        base = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": record.model,
        }

        async def send(payload: dict[str, Any]) -> None:
            await response.write(b"data: " + orjson.dumps({**base, **payload}) + b"\n\n")

        frames = [{"role": "assistant", "content": ""}]
        frames += [{"content": token} for token in split_tokens(content)]
        for i, delta in enumerate(frames):
            if break_after is not None and i >= break_after:
                break
            if token_delay and i:
                await self._sleep(token_delay)
            await send({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        if break_after is not None:
            if clean_eof:
                await response.write_eof()
            else:
                _drop(request)
            return response
        await send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        options = record.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await send({"choices": [], "usage": _usage(record.body, content)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _embedding_body(self, record: RecordedRequest) -> dict[str, Any]:
        inputs = record.body.get("input")
        texts = inputs if isinstance(inputs, list) else [inputs]
        base64_wanted = record.body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = [float(len(str(text))), float(i), 0.5]
            encoded: Any = vector
            if base64_wanted:
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(str(t).split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": record.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


# --- helpers ---------------------------------------------------------------------------------


def split_tokens(content: str) -> list[str]:
    """How the fake cuts a content into streamed chunks: one word (with its trailing space) each."""
    return re.findall(r"\S+\s*", content) or [content]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    prompt = sum(
        len(str(m.get("content", "")).split())
        for m in body.get("messages") or []
        if isinstance(m, dict)
    )
    completion = len(split_tokens(content))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )


def _error(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return _json(status, body, headers)


def _drop(request: web.Request) -> None:
    """Cut the TCP connection under the handler: the client sees the socket close mid-exchange."""
    transport = request.transport
    if transport is not None:
        transport.abort()
