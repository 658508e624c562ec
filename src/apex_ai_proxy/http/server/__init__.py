"""A small HTTP/1.1 server on asyncio protocols and httptools' C parser.

Why not a framework: the gateway's own work per request is a few tens of microseconds, and a
general-purpose server costs several times that (measured: a minimal aiohttp proxy did ~2,400
req/s on one core where this stack does ~20,000; see bench/README.md). This package does only
what the gateway needs, hardened against hostile clients: keep-alive and pipelining (bounded),
bodies by Content-Length or chunked, limits and timeouts on every phase of a request, whole and
streamed (chunked) responses with back-pressure, and a graceful shutdown.

    limits.py     ServerLimits: sizes, queue depth, header/body/keep-alive timeouts
    request.py    Request, Headers, and the request-target forms accepted
    responses.py  Response, StreamResponse, protocol_error; the one place headers are written
    protocol.py   HttpProtocol: one connection's state machine (parse, refuse, queue, time out)
    listener.py   HttpServer (listen, dispatch, connection clock, shutdown) and PathRouter
"""

from .limits import ServerLimits
from .listener import EarlyCheck, Handler, HttpServer, PathRouter
from .request import Headers, Request
from .responses import (
    ClientDisconnected,
    ErrorBody,
    Response,
    StreamResponse,
    json_response,
    protocol_error,
)

__all__ = [
    "ClientDisconnected",
    "EarlyCheck",
    "Handler",
    "Headers",
    "HttpServer",
    "PathRouter",
    "Request",
    "Response",
    "ServerLimits",
    "StreamResponse",
    "json_response",
    "ErrorBody",
    "protocol_error",
]
