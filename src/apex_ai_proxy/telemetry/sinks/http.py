"""HTTP sink: ships batches to a log service as JSON.

    POST {base_url}/projects/{project}/logstores/{logstore}       {"logs": [record, ...]}
    POST {base_url}/projects/{project}/logstores/{raw_logstore}   {"logs": [raw capture, ...]}

with `Authorization: Bearer {token}` when a token is configured. Raw captures (only present when
`records.raw` is on) go to `raw_logstore`, or nowhere if it is not set. 2xx is success; 408,
429 and 5xx, timeouts and connection errors are retried with backoff; other 4xx drop the batch
(retrying a request the service rejects cannot help). Delivery is at-least-once: if the raw
post fails after the structured one succeeded, the retry sends both again; `request_id` is the
deduplication key.

The sink owns an `HttpClient` of its own (the gateway's client, a pool apart from the upstream
one, at most 4 connections), so a stuck log service can never take connections from model
traffic. Proxies come from the environment (HTTPS_PROXY/HTTP_PROXY/NO_PROXY), as upstreams' do.

With `format: aepipe` the same sink speaks aepipe's API instead (sinks/aepipe.py): records as
points to `{base_url}/v1/{project}/{logstore}/ingest`, raw captures as log entries to
`{base_url}/v1/{project}/{raw_logstore}/log`, at most 250 per POST. Retries, drops and the
at-least-once delivery are the same.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

import orjson

from apex_ai_proxy.http import (
    ClientOptions,
    HttpClient,
    Timeouts,
    UpstreamBodyTooLarge,
    UpstreamConnectionError,
    UpstreamTimeout,
)

from ..config import HttpSinkConfig
from . import aepipe
from .base import Batch, Sink, SinkError

RETRYABLE_STATUS = frozenset({408, 429})
_OPTIONS = ClientOptions(max_connections=4)
_MAX_ANSWER = 1024 * 1024  # the service's answer is read (to reuse the connection), not kept


class HttpSink(Sink):
    coalesce = 1000  # the Recorder offers small slices: ship what waited as one POST

    def __init__(self, config: HttpSinkConfig, name: str = "http") -> None:
        super().__init__(name, buffer_size=config.buffer_size, max_retries=config.max_retries)
        self.config = config
        self.aepipe = config.format == "aepipe"
        self.url, self.raw_url = _urls(config)
        self._headers = {"content-type": "application/json"}
        if config.token is not None:
            self._headers["authorization"] = f"Bearer {config.token.get_secret_value()}"
        timeout = config.timeout_s
        self._timeouts = Timeouts(total=timeout, connect=timeout, read=timeout)
        self._client: HttpClient | None = None

    async def open(self) -> None:
        self._client = HttpClient()

    async def write(self, batch: Batch) -> None:
        if self.aepipe:
            await self._write_aepipe(batch)
            return
        await self._post(self.url, {"logs": [record.to_dict() for record in batch]})
        if self.raw_url is not None:
            raws = [raw for record in batch if (raw := record.raw_dict()) is not None]
            if raws:
                await self._post(self.raw_url, {"logs": raws})

    async def _write_aepipe(self, batch: Batch) -> None:
        for points in aepipe.chunks([aepipe.point(record) for record in batch]):
            await self._post(self.url, {"points": points})
        if self.raw_url is not None:
            entries = [entry for record in batch if (entry := aepipe.log_entry(record))]
            for logs in aepipe.chunks(entries):
                await self._post(self.raw_url, {"logs": logs})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _post(self, url: str, document: dict[str, Any]) -> None:
        assert self._client is not None, "HttpSink.start() was not called"
        body = orjson.dumps(document)
        try:
            response = await self._client.send(
                "POST", url, self._headers, body, self._timeouts, options=_OPTIONS
            )
            with contextlib.suppress(UpstreamBodyTooLarge):  # its status says enough
                await response.read(_MAX_ANSWER)
        except (UpstreamConnectionError, UpstreamTimeout) as exc:
            raise SinkError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if response.status < 300:
            return
        retryable = response.status >= 500 or response.status in RETRYABLE_STATUS
        raise SinkError(f"{url} answered {response.status}", retryable=retryable)


def _urls(config: HttpSinkConfig) -> tuple[str, str | None]:
    """Where records and raw captures are posted (None: raw captures go nowhere)."""
    base = config.base_url.rstrip("/")
    if config.format == "aepipe":  # names are checked by the config: nothing to quote
        raw = config.raw_logstore
        return (
            base + aepipe.ingest_path(config.project, config.logstore),
            base + aepipe.log_path(config.project, raw) if raw else None,
        )
    base = f"{base}/projects/{quote(config.project, safe='')}/logstores/"
    raw_url = base + quote(config.raw_logstore, safe="") if config.raw_logstore else None
    return base + quote(config.logstore, safe=""), raw_url
