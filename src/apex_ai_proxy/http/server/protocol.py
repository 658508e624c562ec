"""One client connection: parse requests with httptools, run each handler in order, write answers.

Per connection the state is explicit: the parser phase (idle, head, body) with its deadline, the
request being parsed, the handler running, and the queue of pipelined requests behind it.

    idle ──first byte──► head ──headers done──► body ──message done──► idle (handler runs/queued)
      │ keep-alive timeout   │ header timeout        │ body timeout (silence between reads)
      ▼                      ▼                       ▼
    close                  408 + close             408 + close

Writing has its own timeout: a client that reads nothing of an answer for `write_timeout` (the
transport paused writing all that time) is aborted, so it cannot hold a stream open forever.

A request the server refuses (limits, bad target or version, CONNECT, Upgrade, an early check
before `100 Continue`) is answered from here, in the client's API shape, and never reaches a
handler; the connection then closes. If an earlier answer is still being written, the refusal
waits its turn in the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

import httptools

from .parsing import HEAD, IDLE, NEVER, ParserCallbacks, _Refused
from .request import (
    Headers,
    Request,
)
from .responses import (
    CONTINUE,
    INTERNAL_ERROR,
    ClientDisconnected,
    Response,
    StreamResponse,
    protocol_error,
)

if TYPE_CHECKING:
    from .listener import HttpServer

log = logging.getLogger("apex_ai_proxy.http")


class HttpProtocol(ParserCallbacks, asyncio.Protocol):
    __slots__ = (
        "server",
        "limits",
        "transport",
        "parser",
        "closed",
        "paused",
        "keep_alive",
        "streaming",
        "deadline",
        "write_deadline",
        "_phase",
        "_dead",
        "_headers",
        "_multi",
        "_url",
        "_fields_left",
        "_bytes_left",
        "_head_raw",
        "_request",
        "_body",
        "_body_size",
        "_too_large",
        "_current",
        "_pending",
        "_reading_paused",
        "_continue_due",
        "_drain_waiter",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.closed = False
        self.paused = False  # writing: the client reads slower than we write
        self.keep_alive = True  # of the answer being written
        self.streaming = False  # a StreamResponse has sent its head on this connection
        self.deadline = NEVER  # when the current phase times out (server clock)
        self.write_deadline = NEVER  # while writing is paused: when the client is given up on
        self._phase = IDLE
        self._dead = False  # no more requests are read on this connection
        self._headers = Headers()
        self._multi: dict[str, list[str]] | None = None  # repeated header names
        self._url = b""
        self._fields_left = self._bytes_left = self._head_raw = 0  # set per request
        self._request: Request | None = None  # head complete, body still coming
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._current: Request | None = None  # its handler is running
        self._pending: deque[Request | Response | None] = deque()
        self._reading_paused = False
        self._continue_due: Request | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        # Nothing received yet: a connection that never says anything is closed quietly.
        self.deadline = self.server.clock + self.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._mark_gone()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientDisconnected("client connection closed"))

    def eof_received(self) -> None:
        # A half-close counts as gone: the answer may never be read, spend nothing on it.
        self._mark_gone()

    def _mark_gone(self) -> None:
        for request in (self._current, self._request, *self._pending):
            if isinstance(request, Request):
                request.disconnected = True
        self._pending.clear()  # nobody will read their answers

    def data_received(self, data: bytes) -> None:
        if self._dead:
            return
        was_in_head = self._phase == HEAD
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.response)
            elif not self._dead:
                log.error("error in the HTTP parser callbacks", exc_info=cause)
                self._refuse(self._error(400, "Malformed HTTP request."))
        except httptools.HttpParserUpgrade:
            self._refuse(self._error(501, "Protocol upgrades are not supported."))
        except httptools.HttpParserError:
            # After a request that said `connection: close` nothing more is read.
            if not self._dead:
                self._refuse(self._error(400, "Malformed HTTP request."))
        else:
            # httptools buffers a header line until it is complete: bound what it may hold.
            if was_in_head and self._phase == HEAD:
                self._head_raw += len(data)
                limits = self.limits
                if self._head_raw > limits.max_header_bytes + limits.max_target:
                    self._refuse(self._error(431, "Request header fields are too large."))

    def pause_writing(self) -> None:
        self.paused = True
        self.write_deadline = self.server.clock + self.limits.write_timeout

    def resume_writing(self) -> None:
        self.paused = False
        self.write_deadline = NEVER
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- running handlers --------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self._current = request
        self.keep_alive = request.keep_alive
        task = asyncio.get_running_loop().create_task(self._run(request))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _run(self, request: Request) -> None:
        server = self.server
        try:
            response = await server.dispatch(request)
        except Exception:  # a bug must not kill the connection silently or leak a traceback
            log.exception("unhandled error in %s %s", request.method, request.path)
            if self.streaming:  # the answer had started: only a cut connection tells the client
                self.close()
                return
            response = self._answer_error(500, INTERNAL_ERROR, request.path)
        if isinstance(response, StreamResponse):
            if response.prepared:
                await response.write_eof()
            else:  # a stream response never started: send it as a whole (empty) answer
                self.write(Response.encode(response, self.keep_alive))
        else:
            keep = self.keep_alive and not server.closing
            self.write(response.encode(keep, head_only=request.method == "HEAD"))
        self.streaming = False
        self._current = None
        if not self.keep_alive or server.closing:
            self.close()
            return
        if self._pending or self._continue_due is not None or self._phase != IDLE:
            self._next()
        else:  # the usual case, inlined: nothing queued, wait for the next request
            self.deadline = server.clock + self.limits.keep_alive_timeout

    def _next(self) -> None:
        """The answer is written: start the next queued request, or wait for one."""
        pending = self._pending
        if pending:
            item = pending.popleft()
            if self._reading_paused and len(pending) < self.limits.max_pipelined:
                self._resume_reading()
            if isinstance(item, Request):
                self._start(item)
                return
            if item is not None:  # a refusal queued behind earlier answers
                self.write(item.encode(False))
            self.close()
            return
        due = self._continue_due
        if due is not None:
            self._continue_due = None
            refusal = self._check_continue(due)
            if refusal is not None:
                self._refuse(refusal)
                return
        if self._phase == IDLE:
            self.deadline = self.server.clock + self.limits.keep_alive_timeout

    def _check_continue(self, request: Request) -> Response | None:
        """Send `100 Continue`, unless the request is over the size limit or the server's early
        check (authentication) refuses it: then that answer, and the body is never read."""
        if self._too_large:
            return self._answer_error(
                413,
                f"Request body is over the limit of {self.limits.max_body} bytes.",
                request.path,
            )
        early = self.server.early_check
        if early is not None:
            refusal = early(request)
            if refusal is not None:
                return refusal
        if self.parser.get_http_version() == "1.1":  # HTTP/1.0 clients do not know 100
            self.write(CONTINUE)
        return None

    # --- timeouts, refusals, writing ------------------------------------------------------------

    def _error(self, status: int, message: str) -> Response:
        """A protocol error for the request being parsed (its path picks the API shape)."""
        return self._answer_error(status, message, self._url[:16].decode("latin-1"))

    def _answer_error(self, status: int, message: str, path: str) -> Response:
        return protocol_error(status, message, path, self.server.error_body)

    def expire(self) -> None:
        """The deadline passed (called by the server's ticker)."""
        if self.paused and self.write_deadline <= self.server.clock:
            # The client read nothing of the answer for write_timeout: it holds a buffer and,
            # through back-pressure, an upstream stream. Cut off (the handler's drain raises).
            log.info("closing a connection whose client stopped reading its answer")
            self.abort()
            return
        if self._phase == IDLE:
            if self._current is None and not self._pending:
                self.close()  # idle keep-alive, or a connection that never sent anything
            return
        if self._phase == HEAD:
            self._refuse(self._error(408, "The request head was not received in time."))
        else:
            self._refuse(self._error(408, "The request body stopped arriving."))

    def _refuse(self, response: Response | None) -> None:
        """Answer `response` (None: nothing) and close, after any answer still being written."""
        self._dead = True
        self._phase = IDLE
        self.deadline = NEVER
        if self._current is not None:
            self._pending.append(response)
            self._pause_reading()
            return
        if response is not None:
            self.write(response.encode(False))
        self.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.paused:
            return
        if self.closed:
            raise ClientDisconnected("client connection closed")
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await waiter

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Close now, without waiting for buffered bytes to reach a client that reads nothing."""
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def close_if_idle(self) -> None:
        if self._current is None and self._phase == IDLE:
            self.close()
