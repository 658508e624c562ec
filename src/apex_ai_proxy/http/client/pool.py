"""Keep-alive connections to one origin (one proxy, one TLS setting, one set of pinned
addresses): at most `max_connections` open, the rest wait in line up to `pool_timeout`.

Idle connections are kept most recently used first and closed after `idle_timeout`: on acquire
(if the newest idle one has expired, all have) and by one timer per pool that sweeps the oldest.
An idle connection the upstream closed or half-closed is dropped the moment that is seen
(`connection_lost`, or any byte arriving while idle), so it is never handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Sequence

from apex_ai_proxy.http.client.connect import ClientOptions, Origin, Proxy, open_connection
from apex_ai_proxy.http.client.connection import Connection, UpstreamTimeout


class Pool:
    def __init__(
        self,
        origin: Origin,
        options: ClientOptions,
        tls: ssl.SSLContext | None,
        proxy: Proxy | None,
        addresses: Sequence[str] | None,
    ) -> None:
        self.origin = origin
        self.options = options
        self.tls = tls
        self.proxy = proxy
        self.addresses = tuple(addresses) if addresses else None
        # requests through a plain-http proxy name the origin in the target, and authenticate
        self.absolute_form = proxy is not None and tls is None and not addresses
        self.target_prefix = f"http://{origin.host_header}".encode() if self.absolute_form else b""
        self.extra_head = b""
        if self.absolute_form and proxy is not None and proxy.authorization is not None:
            self.extra_head = f"proxy-authorization: {proxy.authorization}\r\n".encode("latin-1")
        self.idle: deque[Connection] = deque()
        self.open_count = 0
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None

    async def acquire(self, timeout: float, fresh: bool = False) -> Connection:
        """A connection for one request: an idle one (unless `fresh`), a new one if under the
        cap, else the next one released, waiting at most the pool timeout."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if not fresh:
                connection = self.take_idle(loop.time())
                if connection is not None:
                    return connection
            if self.open_count < self.options.max_connections:
                return await self._open(timeout)
            if fresh and self.idle:
                self.idle.popleft().close()  # give up an idle slot for the new connection
                continue
            if deadline is None:
                deadline = loop.time() + self.options.pool_timeout
            handed = await self._wait_turn(loop, deadline)
            if handed is not None:
                if fresh:
                    handed.close()  # counted out by close(); loop round to open our own
                    continue
                handed.in_use = True
                handed.reused = True
                return handed

    def take_idle(self, now: float) -> Connection | None:
        """The newest idle connection that is still usable, or None (expired ones closed)."""
        idle = self.idle
        expire = self.options.idle_timeout
        while idle:
            connection = idle.pop()
            if now - connection.last_activity > expire:
                connection.close()
                while idle:  # the newest had expired, so every older one has too
                    idle.pop().close()
                return None
            transport = connection.transport  # Connection.usable(), inlined: once per request
            if not connection.closed and transport is not None and not transport.is_closing():
                connection.in_use = True
                connection.reused = True
                return connection
            connection.close()
        return None

    async def _open(self, timeout: float) -> Connection:
        self.open_count += 1
        try:
            return await open_connection(
                lambda: Connection(self), self.origin, self.addresses, self.proxy, self.tls, timeout
            )
        except BaseException:
            self.open_count -= 1
            self._wake_one()
            raise

    async def _wait_turn(
        self, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> Connection | None:
        """Wait for a released connection (returned) or a free slot (None)."""
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise UpstreamTimeout("pool timeout: every connection to the upstream is busy")
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        self.waiters.append(waiter)
        handle = loop.call_later(remaining, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                connection = waiter.result()
                if connection is not None:  # handed over just as we gave up: pass it on
                    self.release(connection)
                else:
                    self._wake_one()
            raise
        finally:
            handle.cancel()
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def release(self, connection: Connection) -> None:
        """Back from a request whose response was read to the end."""
        transport = connection.transport  # Connection.usable(), inlined: once per request
        if connection.closed or transport is None or transport.is_closing():
            connection.close()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.in_use = False
        connection.last_activity = asyncio.get_running_loop().time()
        self.idle.append(connection)
        if self._sweep is None:
            self._arm_sweep()

    def forget(self, connection: Connection) -> None:
        """The connection closed: free its slot (once) and let the next waiter open one."""
        if connection.counted:
            connection.counted = False
            self.open_count -= 1
            with contextlib.suppress(ValueError):
                self.idle.remove(connection)
            self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _arm_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        oldest = self.idle[0].last_activity
        self._sweep = loop.call_at(oldest + self.options.idle_timeout + 0.5, self._sweep_idle)

    def _sweep_idle(self) -> None:
        self._sweep = None
        now = asyncio.get_running_loop().time()
        idle = self.idle
        while idle and now - idle[0].last_activity > self.options.idle_timeout:
            idle.popleft().close()
        if idle:
            self._arm_sweep()

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self.idle:
            self.idle.pop().close()
        self._wake_one()


def _expire(waiter: asyncio.Future[Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(
            UpstreamTimeout("pool timeout: every connection to the upstream is busy")
        )
