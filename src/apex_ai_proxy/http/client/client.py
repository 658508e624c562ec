"""The upstream HTTP/1.1 client: one keep-alive pool per origin, httptools for parsing.

Built for the gateway's one job, sending a prepared request and relaying the answer, at the cost
of a few tens of microseconds (a general-purpose client measured several times that; see
http/server.py). Bodies arrive as they come off the socket, with back-pressure when the reader
is slower than the upstream. Framing is in connection.py, pooling in pool.py, TLS,
proxies and pinned addresses in connect.py.

Failures, all subclasses of the builtins the dispatcher already treats as "this upstream did not
answer":

    UpstreamConnectionError(ConnectionError)   refused, reset, closed early, malformed answer,
                                               TLS or proxy refusal
        UpstreamBodyTooLarge                   a whole body read past its limit
    UpstreamTimeout(TimeoutError)              connect, pool, total or between-chunks timeout
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from apex_ai_proxy.http.client.connect import (
    DEFAULT_OPTIONS,
    ClientOptions,
    proxy_for,
    split_url,
    tls_context,
)
from apex_ai_proxy.http.client.connection import (
    ChunkConsumer,
    Connection,
    UpstreamBodyTooLarge,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from apex_ai_proxy.http.client.pool import Pool

__all__ = [
    "ChunkConsumer",
    "ClientOptions",
    "ClientResponse",
    "HttpClient",
    "StableHeaders",
    "Timeouts",
    "UpstreamBodyTooLarge",
    "UpstreamConnectionError",
    "UpstreamTimeout",
]

# Request headers: a dict, or (for passthrough) name/value pairs with repeats.
Headers = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float
    connect: float
    read: float  # longest silence while waiting for headers or the next chunk


class ClientResponse:
    """Status and headers are here when `send` returns; the body is read or iterated once.

    The read timeout uses one timer per response that is re-armed only when it fires, not one
    per chunk: on a stream of many small chunks that is most of the waiting cost.
    """

    __slots__ = (
        "status",
        "reason",
        "headers",
        "raw_headers",
        "_connection",
        "_pool",
        "_timeouts",
        "_deadline",
        "_done",
        "_timer",
        "_loop",
    )

    def __init__(
        self, connection: Connection, pool: Pool, timeouts: Timeouts, deadline: float
    ) -> None:
        self.status = connection.status
        self.reason = connection.reason
        self.headers = connection.headers  # lower-case names, repeats joined with ", "
        self.raw_headers = connection.raw_headers  # (name as sent, value) pairs, repeats kept
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

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body. Past `limit` bytes, reading stops, the connection is closed and
        UpstreamBodyTooLarge is raised (before the rest is ever buffered)."""
        declared = self.headers.get("content-length") if limit is not None else None
        if declared is not None and declared.isdigit() and int(declared) > limit:  # type: ignore[operator]
            self.release()
            raise UpstreamBodyTooLarge(f"upstream answer too large (over {limit} bytes)")
        connection = self._connection
        if connection.complete and len(connection.chunks) == 1 and not self._done:
            # The usual small answer: all of it came with the head. What the loop below does
            # for one chunk then the end, without the two awaits.
            body = connection.take()
            if limit is not None and len(body) > limit:
                self.release()
                raise UpstreamBodyTooLarge(f"upstream answer too large (over {limit} bytes)")
            self._finish(reusable=True)
            return body
        parts = []
        size = 0
        try:
            while (chunk := await self.next_chunk()) is not None:
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    raise UpstreamBodyTooLarge(f"upstream answer too large (over {limit} bytes)")
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
    """The one pooled upstream client of a process.

    TLS contexts (one per ca_file/verify setting) and proxy choices are made once per pool, so
    the per-request cost is one dict lookup for the URL's pool and target."""

    def __init__(self) -> None:
        self._routes: dict[tuple, tuple[Pool, bytes]] = {}
        self._pools: dict[tuple, Pool] = {}
        self._tls: dict[tuple[str | None, bool], ssl.SSLContext] = {}

    def _route(
        self, url: str, options: ClientOptions, connect_to: Sequence[str] | None
    ) -> tuple[Pool, bytes]:
        key = (url, options, connect_to if connect_to is None else tuple(connect_to))
        cached = self._routes.get(key)
        if cached is not None:
            return cached
        origin, target = split_url(url)
        pin = key[2]
        pool_key = (origin.scheme, origin.host, origin.port, pin, options.pool_key())
        pool = self._pools.get(pool_key)
        if pool is None:
            tls = self._tls_context(options) if origin.scheme == "https" else None
            proxy = proxy_for(origin, options.proxy)
            pool = self._pools[pool_key] = Pool(origin, options, tls, proxy, pin)
        # Gateway URLs come from config (and model names): cached, bounded. Pinned requests
        # (passthrough) carry client-chosen paths: never cached, or clients could fill it.
        if pin is None and len(self._routes) < 10_000:
            self._routes[key] = (pool, pool.target_prefix + target)
        return pool, pool.target_prefix + target

    def _tls_context(self, options: ClientOptions) -> ssl.SSLContext:
        if options.ssl_context is not None:
            return options.ssl_context
        key = (options.ca_file, options.tls_verify)
        context = self._tls.get(key)
        if context is None:
            try:
                context = self._tls[key] = tls_context(*key)
            except (OSError, ssl.SSLError) as exc:
                raise UpstreamConnectionError(f"TLS settings are not usable: {exc}") from None
        return context

    async def send(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes | None,
        timeouts: Timeouts,
        *,
        options: ClientOptions = DEFAULT_OPTIONS,
        connect_to: Sequence[str] | None = None,
    ) -> ClientResponse:
        """Send one request; returns once the final response head arrived. Redirects are
        never followed. `connect_to`: the only addresses to connect to, in order (checked by
        the caller); the URL's host name still gives Host, SNI and the certificate check."""
        pool, target = self._route(url, options, connect_to)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        head = _request_head(method, target, pool, headers, body)
        head_request = method == "HEAD"
        for attempt in (0, 1):
            # An idle connection is taken without creating acquire()'s coroutine (most requests);
            # the retry always goes to a new connection: the idle ones may be as stale.
            connection = pool.take_idle(loop.time()) if attempt == 0 else None
            if connection is None:
                connection = await pool.acquire(timeouts.connect, fresh=attempt == 1)
            connection.reset(loop, head_request)
            connection.transport.write(head + body if body else head)  # type: ignore[union-attr]
            try:
                await _wait(connection.headers_done, timeouts.read, deadline, "no response headers")  # type: ignore[arg-type]
            except UpstreamConnectionError:
                connection.close()
                # A kept-alive connection the upstream had just closed or reset, before any
                # byte of an answer: the request was not processed; retry once on a new one.
                if attempt == 0 and connection.reused and not connection.received_any:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            return ClientResponse(connection, pool, timeouts, deadline)
        raise UpstreamConnectionError("upstream closed the connection")  # pragma: no cover

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._routes.clear()


class StableHeaders(dict):
    """Headers a caller sends unchanged many times (one per provider key): encoded once.

    Never mutate one after its first use."""

    __slots__ = ()


_UNSAFE = frozenset("\r\n\0")
_UNSAFE_NAME = frozenset("\r\n\0 \t:")

# id -> (the dict itself, so its id cannot be recycled while the entry lives; its encoding)
_encoded_headers: dict[int, tuple[dict[str, str], bytes]] = {}


def _encode_headers(headers: Headers) -> bytes:
    stable = type(headers) is StableHeaders
    if stable:
        cached = _encoded_headers.get(id(headers))
        if cached is not None and cached[0] is headers:
            return cached[1]
    pairs: Iterable[tuple[str, str]] = (
        headers.items() if isinstance(headers, Mapping) else headers  # type: ignore[assignment]
    )
    lines = []
    for name, value in pairs:
        if _UNSAFE.intersection(value) or _UNSAFE_NAME.intersection(name) or not name:
            raise UpstreamConnectionError(f"header {name[:40]!r} has a forbidden character")
        lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    encoded = b"".join(lines)
    if stable and len(_encoded_headers) < 4096:
        _encoded_headers[id(headers)] = (headers, encoded)
    return encoded


def _request_head(
    method: str, target: bytes, pool: Pool, headers: Headers, body: bytes | None
) -> bytes:
    if body is None and method in _NO_BODY_METHODS:
        length = b""  # RFC 9110 §8.6: no Content-Length where no body is defined or sent
    else:
        length = b"content-length: %d\r\n" % (len(body) if body else 0)
    return b"%s %s HTTP/1.1\r\nhost: %s\r\n%s%s%s\r\n" % (
        method.encode("latin-1"),
        target,
        pool.origin.host_header.encode("latin-1"),
        pool.extra_head,
        _encode_headers(headers),
        length,
    )


_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
