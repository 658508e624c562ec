"""The listening server: routes requests to handlers, keeps the connection clock, shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .limits import ServerLimits
from .protocol import HttpProtocol
from .request import Request
from .responses import ErrorBody, Response, StreamResponse

Handler = Callable[[Request], Awaitable[Response | StreamResponse]]
# Called when a request's head is complete and it expects `100 Continue`: an answer refuses it
# (the body is never read), None lets it through.
EarlyCheck = Callable[[Request], Response | None]


class PathRouter:
    """Exact paths, then `{name}` / `{name:path}` patterns; each path maps methods to handlers."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, path: str, methods: dict[str, Handler]) -> None:
        if "{" not in path:
            self.exact[path] = methods
            return
        # `{name}` is one segment; `{name:path}` the rest of the path, slashes included.
        regex = re.sub(
            r"\{(\w+)(:path)?\}",
            lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})",
            path,
        )
        self.patterns.append((re.compile(f"^{regex}$"), methods))

    def match(self, path: str) -> tuple[dict[str, Handler] | None, dict[str, str]]:
        methods = self.exact.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self.patterns:
            found = pattern.match(path)
            if found:
                return methods, found.groupdict()
        return None, {}


class HttpServer:
    """Listens on one socket; `dispatch` routes each request to its handler.

    `limits` bounds what a connection may cost (ServerLimits); `max_body` overrides its body
    limit. `early_check` runs before `100 Continue` is sent (see EarlyCheck). `error_body` renders
    the errors the server answers itself (see ErrorBody); without it they are plain text.
    """

    def __init__(
        self,
        router: PathRouter,
        *,
        max_body: int | None = None,
        not_found: Handler,
        method_not_allowed: Callable[[Request, list[str]], Awaitable[Response]],
        before_route: Callable[[Request], Awaitable[Response | StreamResponse] | None]
        | None = None,
        early_check: EarlyCheck | None = None,
        limits: ServerLimits | None = None,
        error_body: ErrorBody | None = None,
        app: Any = None,
    ) -> None:
        limits = limits or ServerLimits()
        if max_body is not None:
            limits = dataclasses.replace(limits, max_body=max_body)
        self.limits = limits
        self.router = router
        self.not_found = not_found
        self.method_not_allowed = method_not_allowed
        self.before_route = before_route
        self.early_check = early_check
        self.error_body = error_body
        self.app = app
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self.clock = time.monotonic()  # coarse: moved by the ticker; deadlines are set with it
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def max_body(self) -> int:
        return self.limits.max_body

    async def dispatch(self, request: Request) -> Response | StreamResponse:
        if self.before_route is not None:
            early = self.before_route(request)
            if early is not None:
                return await early
        methods, params = self.router.match(request.path)
        if methods is None:
            return await self.not_found(request)
        handler = methods.get(request.method)
        if handler is None:
            return await self.method_not_allowed(request, sorted(methods))
        request.match_info = params
        return await handler(request)

    async def listen(
        self,
        host: str | None = None,
        port: int = 0,
        *,
        sock: Any = None,
        reuse_port: bool = False,
        backlog: int = 4096,
    ) -> int:
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: HttpProtocol(self), sock=sock, backlog=backlog
            )
        else:
            self._server = await loop.create_server(
                lambda: HttpProtocol(self),
                host,
                port,
                backlog=backlog,
                reuse_port=reuse_port or None,
                reuse_address=True,
            )
        self.clock = loop.time()
        self._ticker = loop.call_later(self.limits.tick, self._tick)
        return self._server.sockets[0].getsockname()[1]

    def _tick(self) -> None:
        """Move the clock and time out the connections whose deadline has passed."""
        loop = asyncio.get_running_loop()
        now = self.clock = loop.time()
        expired = [
            conn for conn in self.connections if conn.deadline < now or conn.write_deadline < now
        ]
        for conn in expired:
            conn.expire()
        self._ticker = loop.call_later(self.limits.tick, self._tick)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish within `grace` seconds, close the rest.

        Always returns within about `grace` seconds: connections still open at the end are
        aborted (a client that reads nothing cannot hold a closing transport open), and the wait
        for the listener to report every connection gone is itself bounded.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + grace
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), max(0.1, end - loop.time()))
