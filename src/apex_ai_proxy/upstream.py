"""The one shared HTTP client per process, and the response surface the dispatcher reads.

Remote upstreams and the local echo provider both answer with an `UpstreamResponse`, so the
dispatcher has one code path for relaying, translating and failing over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from apex_ai_proxy.http import (
    ChunkConsumer,
    ClientOptions,
    ClientResponse,
    HttpClient,
    Timeouts,
    UpstreamConnectionError,
)
from apex_ai_proxy.providers.base import UpstreamRequest

# Failures that mean "this upstream did not answer": fail over. The HTTP client raises
# UpstreamConnectionError (a ConnectionError, so an OSError) and UpstreamTimeout (a TimeoutError).
CONNECTION_ERRORS = (OSError, TimeoutError)


class UpstreamResponse(Protocol):
    """What the dispatcher reads: the HTTP client's ClientResponse, or the echo provider's."""

    status: int
    headers: Mapping[str, str]

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; past `limit` bytes, UpstreamBodyTooLarge."""

    async def next_chunk(self) -> bytes | None:
        """The next body chunk, or None at the end."""

    async def pipe(self, consume: ChunkConsumer) -> None:
        """Hand the rest of the body to `consume` chunk by chunk, awaiting what it returns."""

    def release(self) -> None:
        """Give up on the rest of the body."""


def describe_failure(exc: BaseException) -> str:
    """A failed upstream call in a few words, for attempts, records and error events."""
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, UpstreamConnectionError):
        return str(exc)
    if isinstance(exc, ConnectionError):
        return "connection failed"
    return type(exc).__name__


class UpstreamClient:
    """Owns the pooled HTTP client: keep-alive to every upstream, created once per process."""

    def __init__(self) -> None:
        self.http: HttpClient | None = None

    async def start(self) -> None:
        self.http = HttpClient()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def send(
        self, request: UpstreamRequest, timeouts: Timeouts, options: ClientOptions
    ) -> ClientResponse:
        assert self.http is not None, "UpstreamClient.start() was not awaited"
        return await self.http.send(
            request.method, request.url, request.headers, request.body, timeouts, options=options
        )
