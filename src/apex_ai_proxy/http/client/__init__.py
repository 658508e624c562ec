"""The upstream HTTP/1.1 client (client.py), its connections and framing (connection.py), its
per-origin pools (pool.py), and how a connection is opened: TLS, proxies, pinned addresses
(connect.py)."""

from apex_ai_proxy.http.client.client import (
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
