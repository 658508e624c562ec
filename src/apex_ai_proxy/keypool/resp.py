"""A lean Redis connection for the ledger's two hot commands: EVALSHA reserve and settle.

Why not redis-py here: its asyncio client spends ~100 Python calls per command (connection pool
checkout, per-argument encoding, retry wrapper, observability hooks), which made a reservation
cost more CPU than the rest of the request. This connection does one thing: RESP2 commands
pipelined on ONE socket, replies matched to callers in order (Redis answers in order), so a
command costs one future and a few lines of parsing. The commands of one event-loop turn go out
in one write (at c=50 a write per command was a tenth of the gateway's CPU), and one watchdog per
connection, not a timer per command, notices a Redis that stopped answering.

    conn = RespConnection.for_client(redis)          # None: a URL it does not speak (TLS, unix…)
    reply = await conn.call("EVALSHA", sha, ...)    # raises RespError, OSError, TimeoutError
    conn.send(on_reply, "EVALSHA", sha, ...)        # no wait: on_reply(reply or error) later

Every error the callers see is a RedisError or an OSError (TimeoutError is one), which the
ledger's outage fallback already handles. A timed-out or broken connection is closed; the next
call opens a fresh one (the same single retry on a connection error redis-py's client makes).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class RespError(ResponseError):
    """An error reply (`-NOSCRIPT …`, `-ERR …`)."""


_BULK = b"$%d\r\n%s\r\n".__mod__


def pack(args: tuple[str | int | float, ...]) -> bytes:
    """One RESP2 command: an array of bulk strings. Arguments are str, int or float (str() of a
    float is its repr: exact); built by C functions alone, as this runs for every request."""
    encoded = list(map(str.encode, map(str, args)))
    bulks = map(_BULK, zip(map(len, encoded), encoded, strict=True))
    return b"*%d\r\n%s" % (len(encoded), b"".join(bulks))


class _Incomplete(Exception):
    pass


def parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from buf[pos:], and where the next starts; _Incomplete when it is not all
    there yet. Error replies parse to RespError values (raised at the caller)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    pos = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return buf[pos : pos + size], pos + size + 2
    if kind == b":":
        return int(line), pos
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            # Integers and bulk strings (the script replies' items) inline, the rest recursively.
            end = buf.find(b"\r\n", pos)
            head = buf[pos] if end >= 0 else 0
            if head == 58:  # ":"
                items.append(int(buf[pos + 1 : end]))
                pos = end + 2
                continue
            if head == 36 and (size := int(buf[pos + 1 : end])) >= 0:  # "$", not nil
                if len(buf) < end + size + 4:
                    raise _Incomplete
                items.append(buf[end + 2 : end + 2 + size])
                pos = end + size + 4
                continue
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == b"+":
        return line, pos
    if kind == b"-":
        return RespError(line.decode(errors="replace")), pos
    raise RedisConnectionError(f"unexpected RESP reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float = 5.0) -> None:
        self.transport: asyncio.Transport | None = None
        #: In the order the commands went out: a caller's future, or a `send`'s callback.
        self.waiters: deque[asyncio.Future | Callable[[Any], None]] = deque()
        self.buffer = b""
        self.lost = False
        self.timeout = timeout
        self._outgoing: list[bytes] = []  # commands of this loop turn, written by _flush
        self._replies = 0  # replies parsed so far: the watchdog's sign of progress
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def queue(self, waiter: asyncio.Future | Callable[[Any], None], packed: bytes) -> None:
        """One command out at the end of this loop turn, with the others queued in it."""
        self.waiters.append(waiter)
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(packed)

    def flush_now(self) -> None:
        if self._outgoing:
            self._flush()

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if not outgoing:
            return  # flush_now ran first
        if self.lost or self.transport is None:
            return  # fail() has answered their waiters
        self.transport.write(b"".join(outgoing))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(
                self.timeout / 2, self._watch, self._replies, False
            )

    def _watch(self, replies_before: int, stalled_before: bool) -> None:
        """Every half timeout while commands wait: two checks in a row without a reply while
        one was waiting (at least a whole timeout) and the connection is given up on (a late
        reply would be matched in order, but a Redis this slow is treated as down)."""
        self._watchdog = None
        if self.lost or not self.waiters:
            return
        stalled = self._replies == replies_before
        if stalled and stalled_before:
            self.fail(TimeoutError("Redis did not answer in time"))
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            self.timeout / 2, self._watch, self._replies, stalled
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos = 0
        waiters = self.waiters
        try:
            while pos < len(buf):
                reply, pos = parse(buf, pos)
                self._replies += 1
                if not waiters:
                    continue  # nobody asked (cannot happen with a well-behaved server)
                waiter = waiters.popleft()
                if callable(waiter):
                    waiter(reply)
                elif not waiter.done():
                    if isinstance(reply, RespError):
                        waiter.set_exception(reply)
                    else:
                        waiter.set_result(reply)
        except _Incomplete:
            pass
        except (ValueError, RedisConnectionError):
            self.fail(RedisConnectionError("unreadable reply from Redis"))
            return
        self.buffer = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(RedisConnectionError("connection to Redis lost"))

    def fail(self, error: Exception) -> None:
        self.lost = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiters:
            waiter = self.waiters.popleft()
            if callable(waiter):
                waiter(error)
            elif not waiter.done():
                waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class RespConnection:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        timeout: float = 5.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password, self.db = username, password, db
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None

    @classmethod
    def for_client(cls, client: Redis) -> RespConnection | None:
        """The same server, credentials, db and timeout as a redis-py client; None when the
        client connects in a way this does not (TLS, unix socket, a RESP3 protocol…)."""
        pool = client.connection_pool
        kw = pool.connection_kwargs
        if pool.connection_class is not Connection or kw.get("protocol") not in (None, 2, "2"):
            return None
        return cls(
            kw.get("host", "localhost"),
            int(kw.get("port", 6379)),
            username=kw.get("username"),
            password=kw.get("password"),
            db=int(kw.get("db") or 0),
            timeout=float(kw.get("socket_timeout") or 5.0),
        )

    @property
    def ready(self) -> bool:
        """Connected: `send` goes out at once, without waiting."""
        return self._protocol is not None and not self._protocol.lost

    async def call(self, *args: str | int | float) -> Any:
        """Send one command and wait for its reply. A connection error (the connection was
        lost, say by a Redis restart) is retried once on a fresh connection."""
        packed = pack(args)
        loop = asyncio.get_running_loop()
        for retry in (False, True):
            try:
                protocol = self._protocol
                if protocol is None or protocol.lost:
                    protocol = await self._connect()
                waiter = loop.create_future()
                protocol.queue(waiter, packed)
                return await waiter
            except RedisConnectionError:
                if retry:
                    raise
        raise AssertionError("unreachable")

    def send(self, on_reply: Callable[[Any], None], *args: str | int | float) -> None:
        """Send one command on the open connection (only when `ready`) without waiting:
        `on_reply` gets its reply, or the exception (RespError, connection lost) instead."""
        protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        protocol.queue(on_reply, pack(args))

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:  # another caller is connecting: share its connection
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            protocol = await asyncio.wait_for(self._open(loop), self.timeout)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: nobody else may be waiting
            self._connecting = None
            raise
        self._protocol = protocol
        self._connecting.set_result(protocol)
        self._connecting = None
        return protocol

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        timeout = self.timeout
        _, protocol = await loop.create_connection(lambda: _Protocol(timeout), self.host, self.port)
        try:
            await self._hello(loop, protocol)
        except BaseException:
            protocol.fail(RedisConnectionError("Redis refused the connection's AUTH or SELECT"))
            raise
        return protocol

    async def _hello(self, loop: asyncio.AbstractEventLoop, protocol: _Protocol) -> None:
        hello: list[tuple] = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            hello.append(("AUTH", *user, self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        for args in hello:
            waiter = loop.create_future()
            protocol.queue(waiter, pack(args))
            await waiter

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.flush_now()  # what this loop turn queued still goes out
            self._protocol.transport.close()
        self._protocol = None
