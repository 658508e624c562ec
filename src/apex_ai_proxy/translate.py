"""Glue between the dispatcher and the dialect modules when client and upstream dialects differ.

The request is decoded to the neutral form once per request; each upstream dialect tried gets
its own encoding. Responses and streams go upstream dialect → neutral → client dialect.
"""

from __future__ import annotations

import logging

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import Usage
from apex_ai_proxy.errors import BadRequest, GatewayError, UpstreamInvalid
from apex_ai_proxy.sse import SSEEvent, SSEParser

log = logging.getLogger("apex_ai_proxy.translate")

# What reading an upstream answer of an unexpected shape raises: the decoders check the shapes
# the gateway relies on (UpstreamInvalid), and are lenient elsewhere; anything they missed
# still makes a 502 "invalid answer" (logged with its traceback), never a 500.
MALFORMED = (
    GatewayError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ValueError,
    RecursionError,
)
INVALID_EVENT = "upstream sent a stream event of the wrong shape"


class Translation:
    def __init__(
        self, client_dialect: str, upstream_dialect: str, body: dict, ctx: RequestContext
    ) -> None:
        self.client = get_dialect(client_dialect)
        self.upstream = get_dialect(upstream_dialect)
        self.neutral = _nesting_checked(self.client.decode_request, body)
        self.ctx = ctx

    def request(self, upstream_model: str, stream: bool) -> dict:
        body = _nesting_checked(self.upstream.encode_request, self.neutral, upstream_model, stream)
        self.ctx.dropped_fields = list(self.neutral.dropped)
        return body

    def response(self, data: dict, provider: str) -> bytes:
        """The upstream's whole answer in the client's dialect; 502 when it cannot be read."""
        try:
            neutral = self.upstream.decode_response(data)
            return orjson.dumps(self.client.encode_response(neutral, self.neutral))
        except MALFORMED as exc:
            log.warning("unreadable answer from %s", provider, exc_info=exc)
            raise UpstreamInvalid(
                f"Upstream {provider} answered with a body of the wrong shape."
            ) from None

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
        self.broken = False  # an event of the wrong shape ended the stream for the client
        self._pending = b""  # the translated first chunk (prime), sent with the next feed

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

    def _event(self, sse: SSEEvent) -> bytes:
        return self._encode(self.decoder.feed(sse))

    def prime(self, first: bytes) -> None:
        """Translate the first chunk before the client's answer starts, so that an upstream
        whose stream is malformed from the start can still be failed over (UpstreamInvalid)."""
        try:
            self._pending = b"".join([self._event(sse) for sse in self.parser.feed(first)])
        except MALFORMED as exc:
            log.warning("unreadable first stream event", exc_info=exc)
            raise UpstreamInvalid(INVALID_EVENT) from None

    def feed(self, chunk: bytes) -> bytes:
        out, self._pending = self._pending, b""
        if self.broken:
            return out  # the client has had its error event; the rest is not read
        for sse in self.parser.feed(chunk):
            try:
                out += self._event(sse)
            except MALFORMED as exc:
                log.warning("unreadable stream event", exc_info=exc)
                self.broken = self.errored = True
                return out + self.encoder.error(502, INVALID_EVENT)
        return out

    def finish(self) -> bytes:
        if self.broken:
            return self.encoder.finish()
        out = b""
        try:
            for sse in self.parser.flush():
                out += self._event(sse)
            out += self._encode(self.decoder.finish())
        except MALFORMED as exc:
            log.warning("unreadable stream event", exc_info=exc)
            return out + self.encoder.error(502, INVALID_EVENT) + self.encoder.finish()
        if not self.stopped and not self.errored:
            return out + self.encoder.error(502, "upstream stream ended before it was complete")
        return out + self.encoder.finish()

    def error(self, status: int, message: str) -> bytes:
        return self.encoder.error(status, message)


def _nesting_checked(convert, *args):
    """A conversion of the client's request; one nested too deep to walk is the client's 400."""
    try:
        return convert(*args)
    except RecursionError:
        raise BadRequest("The request nests JSON too deeply to translate; flatten it.") from None
