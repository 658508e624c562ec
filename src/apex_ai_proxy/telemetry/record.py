"""The request record: one per request that reached the gateway, errors included.

The gateway core builds a `RequestRecord` while it serves a request, fills the fields as it
learns them (route, attempts, timings, usage) and hands it to `Recorder.submit()` once the
response is finished. Everything here is plain data; `to_dict()` returns only JSON-native values
so the result goes straight into `orjson.dumps`.

Field meanings that are easy to confuse:

- `requested_model`: exactly the model string the client sent (`gpt-4o`, `gpt-4o#azure`).
- `mapped_model`: the configured model name it resolved to (after the mapping header/aliases);
  empty when resolution failed. Metrics and stats group by this name.
- `upstream_model`: the name sent to the provider that finally answered.
- `ttfb_ms`: until the upstream response headers; `ttft_ms`: until the first token (streams);
  `duration_ms`: until the last byte went to the client.
- `token_name`: the gateway token's configured NAME, never the token itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["routed", "passthrough"]


@dataclass(slots=True)
class Attempt:
    """One try against one upstream (provider x key x model) inside the failover loop."""

    provider: str
    key_name: str
    upstream_model: str
    status: int | None = None  # None: no HTTP answer (timeout, connection error)
    latency_ms: float = 0.0
    reason: str | None = None  # why it failed or was abandoned ("rate_limited", "timeout", ...)
    #: A failed attempt's key after it: ok (a fault it shrugs off), degraded (too many faults:
    #: out for a while), rate_limited, invalid (401/403) or cooling_down. None: it answered.
    key_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "key_name": self.key_name,
            "upstream_model": self.upstream_model,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "reason": self.reason,
            "key_state": self.key_state,
        }


@dataclass(slots=True)
class RawRecord:
    """Raw request/response capture, only when `records.raw` is on.

    The core may fill it with whatever it has (bytes or str bodies, any header mapping or list of
    pairs); the Recorder redacts and caps it before any sink sees it, after which the bodies are
    `str` and the headers `dict[str, str]`.
    """

    request_headers: Any = None
    request_body: bytes | str | None = None
    response_headers: Any = None
    response_body: bytes | str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_headers": _headers_to_dict(self.request_headers),
            "request_body": _text(self.request_body),
            "response_headers": _headers_to_dict(self.response_headers),
            "response_body": _text(self.response_body),
        }


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    endpoint: str  # "/v1/chat/completions", "/v1/messages", ...
    ts: float = field(default_factory=time.time)  # epoch seconds when the request arrived
    client_dialect: str = ""
    token_name: str | None = None  # a virtual key's name for a virtual key
    key_id: str | None = None  # the virtual key's id (virtualkeys/), None for gateway tokens
    requested_model: str = ""
    mapped_model: str = ""
    provider: str = ""
    upstream_model: str = ""
    mode: Mode = "routed"
    stream: bool = False
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    dropped_fields: list[str] = field(default_factory=list)
    passthrough_type: str | None = None
    raw: RawRecord | None = None

    @property
    def model(self) -> str:
        """The name records are grouped by: the mapped model, else what the client asked for."""
        return self.mapped_model or self.requested_model

    def to_dict(self, *, include_raw: bool = False) -> dict[str, Any]:
        """JSON-native dict of the record. The raw capture is left out unless asked for."""
        data = {
            "ts": self.ts,
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "client_dialect": self.client_dialect,
            "token_name": self.token_name,
            "key_id": self.key_id,
            "requested_model": self.requested_model,
            "mapped_model": self.mapped_model,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "mode": self.mode,
            "stream": self.stream,
            "status": self.status,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": [attempt.to_dict() for attempt in self.attempts],
            "ttfb_ms": self.ttfb_ms,
            "ttft_ms": self.ttft_ms,
            "duration_ms": self.duration_ms,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
            "dropped_fields": list(self.dropped_fields),
            "passthrough_type": self.passthrough_type,
        }
        if include_raw and self.raw is not None:
            data["raw"] = self.raw.to_dict()
        return data

    def raw_dict(self) -> dict[str, Any] | None:
        """The raw capture as its own document (keyed by request id), or None."""
        if self.raw is None:
            return None
        return {"ts": self.ts, "request_id": self.request_id, **self.raw.to_dict()}


def _text(body: bytes | str | None) -> str | None:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body).decode("utf-8", errors="replace")
    return body


def _headers_to_dict(headers: Any) -> dict[str, str] | None:
    """Any header mapping (dict, aiohttp's multidicts) or list of pairs → plain dict.

    Repeated names are joined with ", " so nothing is lost in the JSON object.
    """
    if headers is None:
        return None
    pairs = headers.items() if hasattr(headers, "items") else headers
    result: dict[str, str] = {}
    for name, value in pairs:
        name, value = str(name), str(value)
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result
