"""One upstream HTTP/1.1 connection: an asyncio protocol that parses responses with httptools.

Response framing (RFC 9112 §6.3), in the order it is decided:

    1xx (not 101)            interim: skipped, the real response follows on the same connection
    HEAD, 204, 304           no body, whatever the headers say
    Transfer-Encoding        only `chunked` is accepted (extensions and trailers are parsed;
                             trailers are dropped); any other coding is refused, as h11 does
    Content-Length           exactly that many bytes; a close before the last one is a break
    neither                  close-delimited: the body ends when the upstream closes

httptools (llhttp) cannot be told "this answers a HEAD", and never reports the end of a
close-delimited body: both are decided here, in `on_headers_complete` and `connection_lost`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from apex_ai_proxy.http.client.pool import Pool

READ_HIGH_WATER = 1024 * 1024  # buffered response bytes before we stop reading the socket

# Takes one body chunk as it comes off the socket; returns None, or an awaitable to finish
# before the next chunk (what arrives meanwhile is buffered, up to the read high-water mark).
ChunkConsumer = Callable[[bytes], "Awaitable[None] | None"]


# Header names as sent -> (that name, its lower-case form): upstreams send the same few names
# on every response; one lookup instead of a decode and a lower() per field. Bounded: names are
# the upstream's to choose.
_NAMES: dict[bytes, tuple[str, str]] = {}


def _name(raw: bytes) -> tuple[str, str]:
    name = raw.decode("latin-1")
    known = (name, name.lower())
    if len(raw) <= 64 and len(_NAMES) < 1024:  # at most 64 KiB, whatever upstreams send
        _NAMES[raw] = known
    return known


class UpstreamConnectionError(ConnectionError):
    pass


class UpstreamTimeout(TimeoutError):
    pass


class UpstreamBodyTooLarge(UpstreamConnectionError):
    """A whole body read with a limit went past it; the connection was closed."""


class Connection(asyncio.Protocol):
    """One upstream connection; carries one request/response at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.in_use = True  # False while idle in the pool
        self.counted = True  # holds one of the pool's connection slots until it closes
        self.received_any = False
        self.head_request = False
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.raw_headers: list[tuple[str, str]] = []
        self.headers_seen = False  # the final (non-1xx) head arrived: later fields are trailers
        self.until_close = False  # close-delimited body
        self.headers_done: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.reading_paused = False
        # the waiter's result is what a piped body's consumer asked to have awaited, if anything
        self.waiter: asyncio.Future[Awaitable[None] | None] | None = None
        self.consumer: ChunkConsumer | None = None  # set while a body is piped

    def reset(self, loop: asyncio.AbstractEventLoop, head_request: bool) -> None:
        """Ready for the next request on this connection (the parser resets by itself)."""
        self.last_activity = loop.time()
        self.received_any = False
        self.head_request = head_request
        self.status = 0
        self.reason = ""
        self.headers = {}
        self.raw_headers = []
        self.headers_seen = False
        self.until_close = False
        self.headers_done = loop.create_future()
        self.chunks.clear()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error = None
        self.waiter = None
        self.consumer = None

    # --- transport ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.in_use or self.complete:
            # Bytes nobody asked for (idle, or after the whole response): the upstream is
            # confused or closing; never parse them as the answer to a later request.
            self.close()
            return
        self.received_any = True
        self.last_activity = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamConnectionError("malformed upstream response: unexpected upgrade"))
            self.close()
        except httptools.HttpParserError as exc:
            if not self.complete:
                # a refusal raised in a callback arrives as the context of the parser's error
                cause = exc.__context__
                detail = cause if isinstance(cause, UpstreamConnectionError) else exc
                self._fail(UpstreamConnectionError(f"malformed upstream response: {detail}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.complete:
            return
        if self.until_close and self.headers_seen:
            self.complete = True  # RFC 9112 §6.3: a close-delimited body ends here
            self._wake()
            return
        if not self.received_any:
            reason = "upstream closed the connection"
        else:
            reason = "upstream closed the connection mid-response"
        self._fail(UpstreamConnectionError(reason))

    # --- parser ------------------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_seen:
            return  # a trailer field: dropped
        known = _NAMES.get(name)
        if known is None:
            known = _name(name)
        text = value.rstrip(b" \t").decode("latin-1")  # llhttp keeps trailing OWS (RFC: not)
        self.raw_headers.append((known[0], text))
        key = known[1]
        headers = self.headers
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text

    def on_headers_complete(self) -> None:
        if self.complete:  # a second response in the same packet: not ours to read
            raise UpstreamConnectionError("unsolicited response")
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # Interim (100 Continue, 103 Early Hints): forget it; llhttp reads the real one next.
            self.headers = {}
            self.raw_headers = []
            return
        self.status = status
        self.headers_seen = True
        headers = self.headers
        coding = headers.get("transfer-encoding")
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise UpstreamConnectionError(f"unsupported transfer-encoding {coding!r}")
        elif "content-length" not in headers and not (
            self.head_request or status == 204 or status == 304
        ):
            self.until_close = True  # neither length nor chunks, and a body: close-delimited
        future = self.headers_done
        if future is not None and not future.done():
            future.set_result(None)
        if self.head_request:
            # llhttp would wait for a body of Content-Length bytes: end the message here and
            # never reuse the connection (its parser state is wrong for the next response).
            self.keep_alive = False
            self.complete = True
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # bytes after a HEAD response: ignored, the connection is not reused
        if self.consumer is not None:
            self._hand_over(body)
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if (
            self.buffered > READ_HIGH_WATER
            and not self.reading_paused
            and self.transport is not None
        ):
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_seen or self.complete:
            return  # the end of an interim response, or of a HEAD answer's phantom body
        # Read it now: once feed_data returns, the parser has reset and says False.
        self.keep_alive = self.parser.should_keep_alive() and not self.until_close
        self.complete = True
        self._wake()

    # --- helpers -----------------------------------------------------------------------------

    def _hand_over(self, body: bytes) -> None:
        """Piping: give the chunk to the consumer right here, in the data callback."""
        consumer = self.consumer
        assert consumer is not None
        try:
            wait = consumer(body)
        except BaseException as exc:  # e.g. the client went away: the pipe ends with it
            self.consumer = None
            self._fail(exc)
            return
        if wait is not None:
            # The receiver needs a moment: buffer what else arrives (reading pauses at the high
            # water mark, as for any buffered body) until the pipe has awaited it.
            self.consumer = None
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(wait)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc  # type: ignore[assignment]
        future = self.headers_done
        if future is not None and not future.done():
            future.set_exception(exc)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def take(self) -> bytes:
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if (
            self.reading_paused
            and self.buffered < READ_HIGH_WATER // 2
            and self.transport is not None
        ):
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    def usable(self) -> bool:
        if self.closed:
            return False
        transport = self.transport
        return transport is not None and not transport.is_closing()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
            self.pool.forget(self)
