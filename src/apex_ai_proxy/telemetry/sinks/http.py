"""HTTP sink: ships batches to a log service as JSON.

    POST {base_url}/projects/{project}/logstores/{logstore}       {"logs": [record, ...]}
    POST {base_url}/projects/{project}/logstores/{raw_logstore}   {"logs": [raw capture, ...]}

with `Authorization: Bearer {token}` when a token is configured. Raw captures (only present when
`records.raw` is on) go to `raw_logstore`, or nowhere if it is not set. 2xx is success; 408,
429 and 5xx, timeouts and connection errors are retried with backoff; other 4xx drop the batch
(retrying a request the service rejects cannot help). Delivery is at-least-once: if the raw
post fails after the structured one succeeded, the retry sends both again; `request_id` is the
deduplication key.

The sink owns a small aiohttp session of its own rather than the upstream pool, so a stuck log
service can never take connections from model traffic.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..config import HttpSinkConfig
from .base import Batch, Sink, SinkError

RETRYABLE_STATUS = frozenset({408, 429})


class HttpSink(Sink):
    coalesce = 1000  # the Recorder offers small slices: ship what waited as one POST

    def __init__(self, config: HttpSinkConfig, name: str = "http") -> None:
        super().__init__(name, buffer_size=config.buffer_size, max_retries=config.max_retries)
        self.config = config
        base = f"{config.base_url.rstrip('/')}/projects/{quote(config.project, safe='')}/logstores/"
        self.url = base + quote(config.logstore, safe="")
        self.raw_url = base + quote(config.raw_logstore, safe="") if config.raw_logstore else None
        self._headers = {"Content-Type": "application/json"}
        if config.token is not None:
            self._headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            connector=aiohttp.TCPConnector(limit=4),
        )

    async def write(self, batch: Batch) -> None:
        await self._post(self.url, [record.to_dict() for record in batch])
        if self.raw_url is not None:
            raws = [raw for record in batch if (raw := record.raw_dict()) is not None]
            if raws:
                await self._post(self.raw_url, raws)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, logs: list[dict[str, Any]]) -> None:
        assert self._session is not None, "HttpSink.start() was not called"
        body = orjson.dumps({"logs": logs})
        try:
            async with self._session.post(url, data=body, headers=self._headers) as response:
                if response.status < 300:
                    return
                retryable = response.status >= 500 or response.status in RETRYABLE_STATUS
                raise SinkError(f"{url} answered {response.status}", retryable=retryable)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkError(f"{url}: {type(exc).__name__}: {exc}") from exc
