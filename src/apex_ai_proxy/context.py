"""Everything the gateway learns about one request while serving it; becomes its record."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from apex_ai_proxy.usage import TokenUsage


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


@dataclass(slots=True)
class AttemptInfo:
    provider: str
    key_name: str
    upstream_model: str
    status: int | None = None
    latency_ms: float = 0.0
    reason: str | None = None


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
    attempts: list[AttemptInfo] = field(default_factory=list)
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    usage: TokenUsage | None = None
    dropped_fields: list[str] = field(default_factory=list)
    passthrough_type: str | None = None

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0
