"""The upstream HTTP/1.1 client: one keep-alive pool per origin, httptools for parsing.

Built for the gateway's one job, sending a prepared POST and relaying the answer, at the cost of
a few tens of microseconds (a general-purpose client measured several times that; see
http/server.py). Bodies arrive as they come off the socket, with back-pressure when the reader
is slower than the upstream.

Failures are two exception types, both subclasses of the builtins the dispatcher already
treats as "this upstream did not answer":

    UpstreamConnectionError(ConnectionError)   refused, reset, closed early, malformed answer
    UpstreamTimeout(TimeoutError)              connect, total or between-chunks timeout
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_READ_HIGH_WATER = 1024 * 1024  # buffered response bytes before we stop reading the socket
_MAX_IDLE_PER_ORIGIN = 256

# Takes one body chunk as it comes off the socket; returns None, or an awaitable to finish
# before the next chunk (what arrives meanwhile is buffered, up to the read high-water mark).
ChunkConsumer = Callable[[bytes], "Awaitable[None] | None"]


class UpstreamConnectionError(ConnectionError):
    pass


class UpstreamTimeout(TimeoutError):
    pass


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float
    connect: float
    read: float  # longest silence while waiting for headers or the next chunk


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: str


def _split_url(url: str) -> tuple[_Origin, bytes]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UpstreamConnectionError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    default = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin(scheme, host, port, host_header), target.encode("latin-1")


class _Connection(asyncio.Protocol):
    """One upstream connection; carries one request/response at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.received_any = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self._header_name = ""
        self.headers_done: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.reading_paused = False
        # the waiter's result is what a piped body's consumer asked to have awaited, if anything
        self.waiter: asyncio.Future[Awaitable[None] | None] | None = None
        self.consumer: ChunkConsumer | None = (
            None  # set while a body is piped (ClientResponse.pipe)
        )

    def reset(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ready for the next request on this connection (the parser resets by itself)."""
        self.last_activity = loop.time()
        self.received_any = False
        self.status = 0
        self.headers = {}
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
        self.received_any = True
        self.last_activity = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"malformed upstream response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if not self.complete:
            if not self.received_any:
                reason = "upstream closed the connection"
            else:
                reason = "upstream closed the connection mid-response"
            self._fail(UpstreamConnectionError(reason))

    # --- parser ------------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        future = self.headers_done
        if future is not None and not future.done():
            future.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.consumer is not None:
            self._hand_over(body)
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if (
            self.buffered > _READ_HIGH_WATER
            and not self.reading_paused
            and self.transport is not None
        ):
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # Read it now: once feed_data returns, the parser has reset and says False.
        self.keep_alive = self.parser.should_keep_alive()
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

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
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
            and self.buffered < _READ_HIGH_WATER // 2
            and self.transport is not None
        ):
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()


class _Pool:
    """Idle keep-alive connections to one origin, most recently used first."""

    def __init__(self, origin: _Origin, ssl_context: ssl.SSLContext | None) -> None:
        self.origin = origin
        self.ssl_context = ssl_context
        self.idle: deque[_Connection] = deque()

    async def acquire(self, timeout: float) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if (
                not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
            ):
                connection.reused = True
                return connection
        return await self.open(timeout)

    async def open(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        origin = self.origin
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    origin.host,
                    origin.port,
                    ssl=self.ssl_context if origin.scheme == "https" else None,
                    server_hostname=origin.host if origin.scheme == "https" else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("connect timed out") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"connection failed: {exc.strerror or exc}") from None
        return connection

    def release(self, connection: _Connection) -> None:
        if connection.closed or len(self.idle) >= _MAX_IDLE_PER_ORIGIN:
            connection.close()
        else:
            self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(connection)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class ClientResponse:
    """Status and headers are here when `send` returns; the body is read or iterated once.

    The read timeout uses one timer per response that is re-armed only when it fires, not one
    per chunk: on a stream of many small chunks that is most of the waiting cost.
    """

    __slots__ = (
        "status",
        "headers",
        "_connection",
        "_pool",
        "_timeouts",
        "_deadline",
        "_done",
        "_timer",
        "_loop",
    )

    def __init__(
        self, connection: _Connection, pool: _Pool, timeouts: Timeouts, deadline: float
    ) -> None:
        self.status = connection.status
        self.headers = connection.headers
        self._connection = connection
        self._pool = pool
        self._timeouts = timeouts
        self._deadline = deadline
        self._done = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    async def next_chunk(self) -> bytes | None:
        """The next body chunk as it arrived, or None at the end."""
        connection = self._connection
        while not connection.chunks:
            if self._body_ended():
                return None
            await self._news()
        return connection.take()

    def _body_ended(self) -> bool:
        """True once the whole body was read (the connection goes back to the pool); raises the
        connection's error (the connection is closed)."""
        connection = self._connection
        if connection.complete:
            self._finish(reusable=True)
            return True
        if connection.error is not None:
            self._finish(reusable=False)
            raise connection.error
        return False

    async def _news(self, consume: ChunkConsumer | None = None) -> Awaitable[None] | None:
        """Wait for a chunk, the end, an error or a timeout. With `consume`, chunks go to it from
        the data callback meanwhile; returns what it asked to have awaited, if anything."""
        connection = self._connection
        waiter = connection.waiter = self._loop.create_future()
        connection.consumer = consume
        if self._timer is None:
            self._arm()
        try:
            return await waiter
        finally:
            connection.consumer = None

    def _arm(self) -> None:
        quiet_until = self._connection.last_activity + self._timeouts.read
        self._timer = self._loop.call_at(min(quiet_until, self._deadline), self._check_timeout)

    def _check_timeout(self) -> None:
        self._timer = None
        connection = self._connection
        waiter = connection.waiter
        if waiter is None or waiter.done() or self._done:
            return  # nobody is waiting now; the next wait arms the timer again
        now = self._loop.time()
        if now >= self._deadline:
            waiter.set_exception(UpstreamTimeout("upstream stopped sending: request timed out"))
        elif now - connection.last_activity >= self._timeouts.read:
            waiter.set_exception(UpstreamTimeout("upstream stopped sending: timed out"))
        else:
            self._arm()

    async def read(self) -> bytes:
        parts = []
        try:
            while (chunk := await self.next_chunk()) is not None:
                parts.append(chunk)
        except BaseException:
            self.release()
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def pipe(self, consume: ChunkConsumer) -> None:
        """Hand the rest of the body to `consume`, chunk by chunk, from the connection's data
        callback: no task wake-up and no await per chunk, which is most of a relay's cost on
        streams of many small chunks. Raises what `consume` raised, or the connection's error."""
        connection = self._connection
        try:
            while True:
                while connection.chunks:
                    wait = consume(connection.take())
                    if wait is not None:
                        await wait
                if self._body_ended():
                    return
                wait = await self._news(consume)
                if wait is not None:  # the receiver asked for a moment: give it, then go on
                    await wait
                    # the silence was ours, not the upstream's: restart the read timeout
                    connection.last_activity = self._loop.time()
        except BaseException:
            self.release()
            raise

    def _finish(self, reusable: bool) -> None:
        if self._done:
            return
        self._done = True
        self._cancel_timer()
        connection = self._connection
        if reusable and connection.keep_alive:
            self._pool.release(connection)
        else:
            connection.close()

    def release(self) -> None:
        """Give up on the rest of the body; the connection cannot be reused."""
        if not self._done:
            self._done = True
            self._cancel_timer()
            self._connection.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _wait(future: asyncio.Future[None], idle: float, deadline: float, what: str) -> None:
    """Await `future`, failing it with UpstreamTimeout after `idle` seconds or at `deadline`."""
    loop = asyncio.get_running_loop()
    timeout = min(idle, deadline - loop.time())
    if timeout <= 0:
        raise UpstreamTimeout(f"{what}: request timed out")
    handle = loop.call_later(timeout, _time_out, future, what)
    try:
        await future
    finally:
        handle.cancel()


def _time_out(future: asyncio.Future[None], what: str) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout(f"{what}: timed out"))


class HttpClient:
    """The one pooled upstream client of a process."""

    def __init__(self) -> None:
        self._pools: dict[str, tuple[_Pool, bytes]] = {}
        self._origins: dict[tuple[str, str, int], _Pool] = {}
        self._ssl_context: ssl.SSLContext | None = None

    def _pool_for(self, url: str) -> tuple[_Pool, bytes]:
        cached = self._pools.get(url)
        if cached is not None:
            return cached
        origin, target = _split_url(url)
        key = (origin.scheme, origin.host, origin.port)
        pool = self._origins.get(key)
        if pool is None:
            if origin.scheme == "https" and self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            pool = self._origins[key] = _Pool(origin, self._ssl_context)
        if len(self._pools) < 10_000:  # URLs come from config (and model names): bound the cache
            self._pools[url] = (pool, target)
        return pool, target

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeouts: Timeouts
    ) -> ClientResponse:
        pool, target = self._pool_for(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        head = _request_head(method, target, pool.origin.host_header, headers, body)
        for attempt in (0, 1):
            connection = await pool.acquire(timeouts.connect)
            connection.reset(loop)
            connection.transport.write(head + body if body else head)  # type: ignore[union-attr]
            try:
                await _wait(connection.headers_done, timeouts.read, deadline, "no response headers")  # type: ignore[arg-type]
            except UpstreamConnectionError:
                # A kept-alive connection the upstream had just closed: retry once on a new one.
                if attempt == 0 and connection.reused and not connection.received_any:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            return ClientResponse(connection, pool, timeouts, deadline)
        raise UpstreamConnectionError("upstream closed the connection")  # pragma: no cover

    async def close(self) -> None:
        for pool in self._origins.values():
            pool.close()
        self._origins.clear()
        self._pools.clear()


class StableHeaders(dict):
    """Headers a caller sends unchanged many times (one per provider key): encoded once.

    Never mutate one after its first use."""

    __slots__ = ()


# id -> (the dict itself, so its id cannot be recycled while the entry lives; its encoding)
_encoded_headers: dict[int, tuple[dict[str, str], bytes]] = {}


def _encode_headers(headers: dict[str, str]) -> bytes:
    stable = type(headers) is StableHeaders
    if stable:
        cached = _encoded_headers.get(id(headers))
        if cached is not None and cached[0] is headers:
            return cached[1]
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise UpstreamConnectionError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    encoded = b"".join(lines)
    if stable and len(_encoded_headers) < 4096:
        _encoded_headers[id(headers)] = (headers, encoded)
    return encoded


def _request_head(
    method: str, target: bytes, host: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    return b"%s %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %d\r\n\r\n" % (
        method.encode(),
        target,
        host.encode("latin-1"),
        _encode_headers(headers),
        len(body) if body else 0,
    )
