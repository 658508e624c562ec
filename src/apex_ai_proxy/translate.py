"""Glue between the dispatcher and the dialect modules when client and upstream dialects differ.

The request is decoded to the neutral form once per request; each upstream dialect tried gets
its own encoding. Responses and streams go upstream dialect → neutral → client dialect.
"""

from __future__ import annotations

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import Usage
from apex_ai_proxy.sse import SSEParser


class Translation:
    def __init__(
        self, client_dialect: str, upstream_dialect: str, body: dict, ctx: RequestContext
    ) -> None:
        self.client = get_dialect(client_dialect)
        self.upstream = get_dialect(upstream_dialect)
        self.neutral = self.client.decode_request(body)
        self.ctx = ctx

    def request(self, upstream_model: str, stream: bool) -> dict:
        body = self.upstream.encode_request(self.neutral, upstream_model, stream)
        self.ctx.dropped_fields = list(self.neutral.dropped)
        return body

    def response(self, data: dict) -> bytes:
        neutral = self.upstream.decode_response(data)
        return orjson.dumps(self.client.encode_response(neutral, self.neutral))

    def stream(self) -> StreamTranslation:
        return StreamTranslation(self)


class StreamTranslation:
    """Upstream SSE bytes in, client SSE bytes out, one chunk at a time."""

    def __init__(self, translation: Translation) -> None:
        self.parser = SSEParser()
        self.decoder = translation.upstream.stream_decoder()
        self.encoder = translation.client.stream_encoder(translation.neutral)
        self.usage: Usage | None = None
        self.stopped = False
        self.errored = False  # the decoder already reported a failure to the client

    @property
    def truncated(self) -> bool:
        return not self.stopped

    def _encode(self, events: list) -> bytes:
        out = b""
        for event in events:
            kind = event.type
            if kind == "usage":
                self.usage = event.usage
            elif kind == "stop":
                self.stopped = True
            elif kind == "error":
                self.errored = True
            out += self.encoder.encode(event)
        return out

    def feed(self, chunk: bytes) -> bytes:
        out = b""
        for sse in self.parser.feed(chunk):
            out += self._encode(self.decoder.feed(sse))
        return out

    def finish(self) -> bytes:
        out = b""
        for sse in self.parser.flush():
            out += self._encode(self.decoder.feed(sse))
        out += self._encode(self.decoder.finish())
        if not self.stopped and not self.errored:
            return out + self.encoder.error(502, "upstream stream ended before it was complete")
        return out + self.encoder.finish()

    def error(self, status: int, message: str) -> bytes:
        return self.encoder.error(status, message)


def plan_translation(
    client_dialect: str, upstream_dialect: str, body: dict, ctx: RequestContext
) -> Translation:
    return Translation(client_dialect, upstream_dialect, body, ctx)
