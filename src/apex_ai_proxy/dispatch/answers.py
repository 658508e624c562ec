"""An upstream's success, as the client receives it: a whole answer, or the start of a stream.

A whole answer is read, checked, translated and scrubbed before the client sees a byte, so a
broken one (UpstreamInvalid) can still fail over. A stream's response starts here, after its
first chunk came in; from then on the relay carries it and failures become error events.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.operation import Operation
from apex_ai_proxy.errors import UpstreamInvalid, carries_error
from apex_ai_proxy.http import Request, Response, StreamResponse
from apex_ai_proxy.providers.base import Target
from apex_ai_proxy.relay import (
    RAW_CAPTURE_BYTES,
    ClientStream,
    SameDialectStream,
    ScrubbedStream,
    client_sink,
    relay_stream,
)
from apex_ai_proxy.translate import Translation
from apex_ai_proxy.upstream import UpstreamResponse
from apex_ai_proxy.usage import usage_from_body, usage_from_raw
from apex_ai_proxy.virtualkeys.headers import limit_headers

OBJECT_START = re.compile(rb"[ \t\r\n]*\{")

# Removes every configured secret from bytes bound for the client; the same object if none.
ScrubBytes = Callable[[bytes], bytes]


def whole_response(
    ctx: RequestContext,
    op: Operation,
    target: Target,
    raw: bytes,
    upstream: UpstreamResponse,
    translation: Translation | None,
    scrub_bytes: ScrubBytes,
) -> Response:
    upstream_dialect = target.adapter.dialect if op.kind == "chat" else "openai_chat"
    if translation is not None:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise invalid_answer(target)
        ctx.usage = usage_from_body(upstream_dialect, data)
        raw = translation.response(data, target.provider)
    else:
        if OBJECT_START.match(raw) is None:  # every API answers an object; relayed unread
            raise invalid_answer(target)
        ctx.usage = usage_from_raw(upstream_dialect, raw)
    if carries_error(raw):
        # A 200 holding an error object may quote the key. Only such bodies are searched:
        # one scan for the marker per answer, no decode of ordinary answers.
        raw = scrub_bytes(raw)
    resp = Response(status=upstream.status, body=raw, content_type="application/json")
    ctx.bytes_out = len(raw)
    with_gateway_headers(resp, ctx, target)
    if ctx.raw is not None:
        ctx.capture_response(resp.headers, raw, RAW_CAPTURE_BYTES)
    return resp


async def start_stream(
    request: Request,
    ctx: RequestContext,
    op: Operation,
    target: Target,
    first: bytes,
    upstream: UpstreamResponse,
    stream: ClientStream | None,
    scrub_bytes: ScrubBytes,
    pool_headers: dict[str, str] | None = None,
) -> StreamResponse:
    resp = StreamResponse(status=200)
    resp.content_type = "text/event-stream"
    resp.headers["cache-control"] = "no-cache"
    with_gateway_headers(resp, ctx, target)
    if pool_headers and ctx.key_hold is None:  # a limited virtual key: its own limits show
        resp.headers.update(pool_headers)
    await resp.prepare(request)
    ctx.ttfb_ms = ctx.elapsed_ms()
    sink = client_sink(resp, ctx)
    if op.tap is not None:
        sink = op.tap.stream(sink, ctx)
    if stream is None:
        dialect = target.adapter.dialect
        strip_usage = dialect == "openai_chat" and not ctx.wants_usage
        stream = SameDialectStream(ctx.client_dialect, dialect, strip_usage)
    else:
        first = b""  # primed: the stream holds the first chunk's translation
    stream = ScrubbedStream(stream, scrub_bytes)
    await relay_stream(sink, ctx, upstream, first, stream)
    return resp


def invalid_answer(target: Target) -> UpstreamInvalid:
    return UpstreamInvalid(
        f"Upstream {target.provider} answered with something other than a JSON object."
    )


def with_gateway_headers(
    resp: StreamResponse, ctx: RequestContext, target: Target
) -> StreamResponse:
    headers = resp.headers
    headers["x-request-id"] = ctx.request_id
    headers["x-apex-provider"] = target.provider
    headers["x-apex-model"] = target.upstream_model
    headers["x-apex-attempts"] = str(len(ctx.attempts))
    if ctx.key_hold is not None:  # a virtual key with limits: what is left of them
        headers.update(limit_headers(ctx))
    return resp
