"""The gateway's own HTTP/1.1 server and upstream client (asyncio protocols + httptools)."""

from apex_ai_proxy.http.client import (
    ChunkConsumer,
    ClientOptions,
    ClientResponse,
    HttpClient,
    StableHeaders,
    Timeouts,
    UpstreamBodyTooLarge,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from apex_ai_proxy.http.server import (
    ClientDisconnected,
    ErrorBody,
    HttpServer,
    PathRouter,
    Request,
    Response,
    ServerLimits,
    StreamResponse,
    json_response,
    protocol_error,
)

__all__ = [
    "ChunkConsumer",
    "ClientDisconnected",
    "ClientOptions",
    "ClientResponse",
    "HttpClient",
    "HttpServer",
    "Request",
    "Response",
    "PathRouter",
    "ServerLimits",
    "StableHeaders",
    "StreamResponse",
    "Timeouts",
    "UpstreamBodyTooLarge",
    "UpstreamConnectionError",
    "UpstreamTimeout",
    "json_response",
    "ErrorBody",
    "protocol_error",
]
