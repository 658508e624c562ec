"""Everything the gateway learns about one request while serving it; becomes its record."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from apex_ai_proxy.config import Price
from apex_ai_proxy.dialects.neutral import Usage
from apex_ai_proxy.telemetry.record import Attempt, RawRecord, RequestRecord


def new_request_id() -> str:
    """Time-ordered (then random), so the records index on it only ever grows at the end."""
    return f"req_{time.time_ns():016x}{os.urandom(6).hex()}"


@dataclass(slots=True)
class RequestContext:
    endpoint: str
    client_dialect: str
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.monotonic)
    wall_time: float = field(default_factory=time.time)
    mode: str = "routed"
    token_name: str | None = None
    requested_model: str | None = None
    mapped_model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
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
    usage: Usage | None = None
    dropped_fields: list[str] = field(default_factory=list)
    passthrough_type: str | None = None
    price: Price | None = None  # of the target that answered, for the cost estimate
    raw: RawRecord | None = None  # only when records.raw is on
    wants_usage: bool = False  # the client asked for the stream usage chunk

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def capture_response(self, headers: object, body: bytes, limit: int) -> None:
        """Keep (the start of) what the client got, for the raw record."""
        raw = self.raw
        if raw is None:
            return
        raw.response_headers = headers
        kept = raw.response_body or b""
        if isinstance(kept, bytes) and len(kept) < limit:
            raw.response_body = kept + body[: limit - len(kept)]

    def to_record(self) -> RequestRecord:
        usage = self.usage
        cost = None
        if usage is not None and self.price is not None:
            cost = self.price.cost(usage)
        return RequestRecord(
            request_id=self.request_id,
            endpoint=self.endpoint,
            ts=self.wall_time,
            client_dialect=self.client_dialect,
            token_name=self.token_name,
            requested_model=self.requested_model or "",
            mapped_model=self.mapped_model or "",
            provider=self.provider or "",
            upstream_model=self.upstream_model or "",
            mode=self.mode,  # type: ignore[arg-type]
            stream=self.stream,
            status=self.status,
            error_type=self.error_type,
            error_message=self.error_message,
            attempts=self.attempts,
            ttfb_ms=self.ttfb_ms,
            ttft_ms=self.ttft_ms,
            duration_ms=self.duration_ms,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            prompt_tokens=usage.input_tokens if usage else None,
            completion_tokens=usage.output_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            reasoning_tokens=usage.reasoning_tokens if usage else None,
            cost_usd=cost,
            dropped_fields=self.dropped_fields,
            passthrough_type=self.passthrough_type,
            raw=self.raw,
        )
