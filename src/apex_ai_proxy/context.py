"""The record of one request while the gateway serves it.

A RequestContext *is* the RequestRecord the recorder receives, filled in step by step, plus the
few things only serving needs (start time, the usage object, the answering target's price).
`finish()` derives the token and cost fields and hands back the record.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from apex_ai_proxy.config import Price
from apex_ai_proxy.dialects.neutral import Usage
from apex_ai_proxy.telemetry.record import RequestRecord


def new_request_id() -> str:
    """Time-ordered (then random), so the records index on it only ever grows at the end.

    The random part only keeps ids apart, it guards nothing: `random` (reseeded in each forked
    worker) instead of os.urandom, which is a system call per request."""
    return f"req_{time.time_ns():016x}{random.getrandbits(48):012x}"


@dataclass(slots=True)
class RequestContext(RequestRecord):
    started: float = field(default_factory=time.monotonic)
    usage: Usage | None = None
    price: Price | None = None  # of the target that answered, for the cost estimate
    wants_usage: bool = False  # the client asked for the stream usage chunk
    key_hold: object | None = None  # a virtual key's ledger reservation, settled at the end

    @classmethod
    def new(cls, endpoint: str, client_dialect: str, **fields: object) -> RequestContext:
        return cls(new_request_id(), endpoint, client_dialect=client_dialect, **fields)  # type: ignore[arg-type]

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

    def finish(self) -> RequestRecord:
        """Fill the fields derived at the end (duration, tokens, cost); the record is self."""
        if self.duration_ms is None:
            self.duration_ms = self.elapsed_ms()
        usage = self.usage
        if usage is not None:
            self.prompt_tokens = usage.input_tokens
            self.completion_tokens = usage.output_tokens
            self.cached_tokens = usage.cached_tokens
            self.reasoning_tokens = usage.reasoning_tokens
            if self.price is not None:
                self.cost_usd = self.price.cost(usage)
        return self
