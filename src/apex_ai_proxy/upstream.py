"""The one shared HTTP client per process, and the response surface the dispatcher reads.

Remote upstreams and the local echo provider both answer with an `UpstreamResponse`, so the
dispatcher has one code path for relaying, translating and failing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from apex_ai_proxy.http import ClientResponse, HttpClient, Timeouts
from apex_ai_proxy.providers.base import UpstreamRequest

# Failures that mean "this upstream did not answer": fail over. The HTTP client raises
# UpstreamConnectionError (a ConnectionError, so an OSError) and UpstreamTimeout (a TimeoutError).
CONNECTION_ERRORS = (OSError, TimeoutError)


class UpstreamResponse(Protocol):
    """What the dispatcher reads: the HTTP client's ClientResponse, or the echo provider's."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...


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

    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> ClientResponse:
        assert self.http is not None, "UpstreamClient.start() was not awaited"
        return await self.http.send(
            request.method, request.url, request.headers, request.body, timeouts
        )
