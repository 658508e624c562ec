"""Relaying a started upstream stream to the client, after the dispatcher chose the upstream.

    upstream chunks ──► ClientStream (same dialect: bytes as they are; else a StreamTranslation)
                              │ client-dialect bytes
                              ▼
                        sink (the StreamResponse, or a capture / tap in front of it) ──► client

The chunks are handed over by `UpstreamResponse.pipe` from the upstream connection's data
callback: a relayed chunk costs no task wake-up and no await unless the client is slow or a tap
needs to wait (the Responses API storing an answer). A break after the first byte can no longer
fail over: it becomes an error event in the client's dialect.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects.neutral import Usage
from apex_ai_proxy.dialects.responses.stream_position import stream_position
from apex_ai_proxy.errors import ERROR_MARKER, carries_error, stream_error_event
from apex_ai_proxy.http import ClientDisconnected, StreamResponse
from apex_ai_proxy.upstream import CONNECTION_ERRORS, UpstreamResponse, describe_failure
from apex_ai_proxy.usage import usage_from_stream

# What marks the proper end of a stream in each dialect; a stream that ends without it was cut.
STREAM_END_MARKERS: dict[str, tuple[bytes, ...]] = {
    "openai_chat": (b"[DONE]",),
    "anthropic": (b"message_stop",),
    "responses": (b"response.completed", b"response.incomplete", b"response.failed"),
    "gemini": (b"finishReason",),
}
TAIL_BYTES = 8192  # the start of a relayed stream kept to read usage (Anthropic's input side)
# The last chunks of a relayed stream, kept whole to read usage and the end marker: a final event
# can be far larger than any fixed byte tail (Responses' `response.completed` repeats the request's
# tools and instructions, some 50 KB with a coding agent's tool list), and its marker and its
# `data:` line are at its start.
TAIL_CHUNKS = 8
RAW_CAPTURE_BYTES = 256 * 1024  # the recorder caps again (records.raw_body_limit_bytes)
HELD_EVENT_BYTES = 64 * 1024  # an unfinished error event waits for its end up to this size


class StreamSink(Protocol):
    """Where a stream's client-dialect bytes go: the response itself, or a tap in front of it.

    `send_now` writes at once and returns None, or an awaitable to wait on before the next
    write (a slow client, a tap storing an answer)."""

    def send_now(self, data: bytes) -> Awaitable[None] | None: ...

    async def write(self, data: bytes) -> None: ...

    async def write_eof(self, data: bytes = b"") -> None: ...


class ClientStream(Protocol):
    """Upstream stream bytes in, client-dialect bytes out (StreamTranslation is one)."""

    usage: Usage | None

    @property
    def truncated(self) -> bool: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, status: int, message: str) -> bytes: ...


class SameDialectStream:
    """Bytes as they come; only the usage chunk the gateway asked for is held back. Keeps the
    first and the last few chunks to read usage and the end marker once the stream is over
    (a final event spread over more than TAIL_CHUNKS chunks is taken for a cut stream)."""

    __slots__ = ("client_dialect", "dialect", "_stripper", "_head", "_recent", "_joined")

    def __init__(self, client_dialect: str, dialect: str, strip_usage: bool) -> None:
        self.client_dialect = client_dialect
        self.dialect = dialect
        self._stripper = UsageChunkStripper() if strip_usage else None
        self._head: bytes | None = None
        self._recent: deque[bytes] = deque(maxlen=TAIL_CHUNKS)
        self._joined: bytes | None = None  # _tail() since the last chunk

    def feed(self, chunk: bytes) -> bytes:
        if self._head is None:
            self._head = chunk[:TAIL_BYTES]
        self._recent.append(chunk)
        self._joined = None
        stripper = self._stripper
        return chunk if stripper is None else stripper.feed(chunk)

    @property
    def truncated(self) -> bool:
        markers = STREAM_END_MARKERS.get(self.dialect, ())
        tail = self._tail()
        return bool(markers) and not any(marker in tail for marker in markers)

    @property
    def usage(self) -> Usage | None:
        return usage_from_stream(self.dialect, self._head or b"", self._tail())

    def finish(self) -> bytes:
        rest = self._stripper.flush() if self._stripper is not None else b""
        if self.truncated:
            rest += self.error(502, "upstream stream ended before it was complete")
        return rest

    def error(self, status: int, message: str) -> bytes:
        if self.client_dialect != "responses":
            return stream_error_event(self.client_dialect, status, message)
        # The failure ends the response the client saw start: its snapshot and numbering come
        # from the kept head and tail (read only now, off the per-chunk path).
        tail = self._tail()
        response, seq = stream_position(self._head or b"", tail)
        return stream_error_event(
            "responses", status, message, response=response, sequence_number=seq
        )

    def _tail(self) -> bytes:
        # asked for three times at the end (truncated twice, usage): joined once
        if self._joined is None:
            self._joined = b"".join(self._recent)
        return self._joined


class ScrubbedStream:
    """In front of any ClientStream: the events that carry an error are scrubbed of every
    configured secret before the client (or a tap storing the answer) sees them.

    Upstreams quote a rejected or exhausted key in mid-stream error events. An ordinary chunk
    costs one `in` check for the marker `"error` (every dialect's error object and error event
    holds it) and one `endswith` of a few bytes; only chunks with the marker are decoded and
    searched. The unfinished last event of a chunk waits for the rest (up to HELD_EVENT_BYTES)
    when it holds the marker, so a key split across two chunks is still seen whole, and when the
    chunk ends with the start of the marker (`"`, `"e` … `"erro`), so a marker split across two
    chunks is seen whole too, with the event around it. Nothing the client could use waits: an
    unfinished SSE event is not parsed before its end. Left as it is: an error event longer than
    HELD_EVENT_BYTES, which is scrubbed chunk by chunk (a key cut by a chunk boundary there is
    not found; a marker cut there still is, from the few bytes held)."""

    __slots__ = ("inner", "scrub", "_held")

    def __init__(self, inner: ClientStream, scrub: Callable[[bytes], bytes]) -> None:
        self.inner = inner
        self.scrub = scrub
        self._held = b""

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    @property
    def truncated(self) -> bool:
        return self.inner.truncated

    def feed(self, chunk: bytes) -> bytes:
        out = self.inner.feed(chunk)
        if self._held:
            out = self._held + out
        elif ERROR_MARKER not in out and not out.endswith(_MARKER_STARTS):
            return out
        cut = _held_from(out)
        out, self._held = out[:cut], out[cut:]
        return self._clean(out)

    def finish(self) -> bytes:
        return self._flush(self.inner.finish())

    def error(self, status: int, message: str) -> bytes:
        return self._flush(self.inner.error(status, message))

    def _flush(self, rest: bytes) -> bytes:
        out, self._held = self._held + rest, b""
        return self._clean(out)

    def _clean(self, data: bytes) -> bytes:
        return self.scrub(data) if data and carries_error(data) else data


# The proper prefixes of the marker: a chunk ending with one may end inside the marker.
_MARKER_STARTS = tuple(ERROR_MARKER[:n] for n in range(1, len(ERROR_MARKER)))


def _held_from(data: bytes) -> int:
    """Where the bytes of `data` to hold for the next chunk start (`len(data)`: none).

    The unfinished last event is held when it holds the marker or ends with its start; one
    too long to hold keeps back only the bytes that may start the marker."""
    size = len(data)
    end = _complete_events_end(data)
    if end == size:
        return size
    starts_marker = data.endswith(_MARKER_STARTS)
    if size - end < HELD_EVENT_BYTES and (starts_marker or data.find(ERROR_MARKER, end) >= 0):
        return end
    return size - len(ERROR_MARKER) + 1 if starts_marker else size


def _complete_events_end(data: bytes) -> int:
    """Where the last complete SSE event of `data` ends (0 when none is complete)."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


class UsageChunkStripper:
    """Removes the OpenAI usage chunk (`"choices":[]`) from a relayed stream.

    The gateway asks OpenAI-compatible upstreams for usage so that records have tokens; a
    client that did not ask must not receive the extra chunk (code reading `choices[0]` breaks).
    Works on whole events, carrying an unfinished one over to the next chunk.
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self._carry = data
            return b""
        complete, self._carry = data[: cut + 2], data[cut + 2 :]
        if b'"choices":[]' not in complete:
            return complete
        events = complete.split(b"\n\n")
        return b"\n\n".join(e for e in events if b'"choices":[]' not in e)

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return b"" if b'"choices":[]' in rest else rest


class CapturingSink:
    """In front of a prepared stream response: keeps the start of what was sent, for raw records."""

    __slots__ = ("_resp", "_ctx")

    def __init__(self, resp: StreamResponse, ctx: RequestContext) -> None:
        self._resp = resp
        self._ctx = ctx

    def send_now(self, data: bytes) -> Awaitable[None] | None:
        self._ctx.capture_response(self._resp.headers, data, RAW_CAPTURE_BYTES)
        return self._resp.send_now(data)

    async def write(self, data: bytes) -> None:
        wait = self.send_now(data)
        if wait is not None:
            await wait

    async def write_eof(self, data: bytes = b"") -> None:
        await self._resp.write_eof(data)


class _Relay:
    """The per-chunk step, called from the upstream connection's data callback."""

    __slots__ = ("stream", "sink", "ctx", "sent")

    def __init__(self, stream: ClientStream, sink: StreamSink, ctx: RequestContext) -> None:
        self.stream = stream
        self.sink = sink
        self.ctx = ctx
        self.sent = 0

    def __call__(self, chunk: bytes) -> Awaitable[None] | None:
        out = self.stream.feed(chunk)
        if not out:
            return None
        self.sent += len(out)
        ctx = self.ctx
        if ctx.ttft_ms is None:
            ctx.ttft_ms = ctx.elapsed_ms()
        return self.sink.send_now(out)


async def relay_stream(
    sink: StreamSink,
    ctx: RequestContext,
    upstream: UpstreamResponse,
    first: bytes,
    stream: ClientStream,
) -> None:
    """Relay `first` and the rest of `upstream` through `stream` into `sink`, then end it:
    a cut or broken upstream stream ends with an error event, a client that hung up stops the
    upstream read at once. Fills the record's bytes_out, ttft, usage and error fields."""
    relay = _Relay(stream, sink, ctx)
    error: str | None = None
    try:
        wait = relay(first)
        if wait is not None:
            await wait
        await upstream.pipe(relay)
        out = stream.finish()
        if stream.truncated:
            error = "upstream stream ended before it was complete"
    except ClientDisconnected:
        ctx.error_type, ctx.error_message = (
            "client_disconnected",
            "the client closed the connection",
        )
        ctx.bytes_out = relay.sent
        upstream.release()
        return
    except CONNECTION_ERRORS as exc:
        error = f"upstream stream broke: {describe_failure(exc)}"
        out = stream.error(502, error)
    if out:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sink.write(out)
        relay.sent += len(out)
    if error is not None:
        ctx.error_type, ctx.error_message = "stream_broken", error
    ctx.bytes_out = relay.sent
    ctx.usage = stream.usage
    with contextlib.suppress(ConnectionError, RuntimeError):
        await sink.write_eof()


def client_sink(resp: StreamResponse, ctx: RequestContext) -> StreamSink:
    """The response itself, or a capture in front of it when raw records are on."""
    return resp if ctx.raw is None else CapturingSink(resp, ctx)
