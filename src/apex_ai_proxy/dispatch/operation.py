"""What the client asked the dispatcher for, and the tap that sees what the client receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.relay import StreamSink


class ClientTap(Protocol):
    """Sees what the client receives, after translation (the Responses API stores answers so).

    `body` gets a whole answer before it is sent and returns what to send; `stream` wraps the
    started stream response and sees every byte, in order, before the client does.
    """

    async def body(self, ctx: RequestContext, raw: bytes) -> bytes: ...

    def stream(self, resp: StreamSink, ctx: RequestContext) -> StreamSink: ...


@dataclass(slots=True)
class Operation:
    """What the client asked for: chat in some dialect, or embeddings."""

    client_dialect: str
    kind: str = "chat"  # "chat" | "embeddings"
    tap: ClientTap | None = None  # per request; None everywhere but /v1/responses
