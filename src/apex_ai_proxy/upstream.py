"""The one shared HTTP client per process, and the response surface the dispatcher reads.

Remote upstreams and the local echo provider both answer with an `UpstreamResponse`, so the
dispatcher has one code path for relaying, translating and failing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp

from apex_ai_proxy.providers.base import UpstreamRequest

# Network errors that mean "this upstream did not answer": fail over.
CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class UpstreamResponse:
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        raise NotImplementedError

    def iter_chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def release(self) -> None:
        pass


class HttpUpstreamResponse(UpstreamResponse):
    __slots__ = ("_resp", "status", "headers")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        finally:
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        finally:
            self._resp.release()

    def release(self) -> None:
        self._resp.close()


class UpstreamClient:
    """Owns the pooled aiohttp session: keep-alive to every upstream, created once per process."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,  # concurrency is bounded by the server, not by the pool
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=60,
            enable_cleanup_closed=False,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            json_serialize=None,  # bodies are always bytes we serialized ourselves
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send(
        self, request: UpstreamRequest, timeout: aiohttp.ClientTimeout
    ) -> HttpUpstreamResponse:
        assert self.session is not None, "UpstreamClient.start() was not awaited"
        resp = await self.session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=timeout,
            allow_redirects=False,
        )
        return HttpUpstreamResponse(resp)
