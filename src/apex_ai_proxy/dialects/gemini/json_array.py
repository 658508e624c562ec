"""streamGenerateContent without `alt=sse`: Google's other stream form, one JSON array.

Upstreams are always asked for SSE; a client that did not ask for it gets the same chunks
re-framed as the array Google sends then, `[{…}` then `,\r\n{…}` per chunk and `]` at the end,
each element written as soon as its event is complete (still a stream, only framed differently).
"""

from __future__ import annotations

from collections.abc import Awaitable

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.sse import SSEParser


class JsonArraySink:
    """A StreamSink in front of another: SSE `data:` events in, array elements out."""

    __slots__ = ("inner", "parser", "started")

    def __init__(self, inner) -> None:
        self.inner = inner
        self.parser = SSEParser()
        self.started = False

    def _elements(self, data: bytes) -> bytes:
        out = []
        for event in self.parser.feed(data):
            if not event.data.strip():
                continue
            out.append((b",\r\n" if self.started else b"[") + event.data.encode())
            self.started = True
        return b"".join(out)

    def send_now(self, data: bytes) -> Awaitable[None] | None:
        elements = self._elements(data)
        return self.inner.send_now(elements) if elements else None

    async def write(self, data: bytes) -> None:
        elements = self._elements(data)
        if elements:
            await self.inner.write(elements)

    async def write_eof(self, data: bytes = b"") -> None:
        elements = self._elements(data)
        for event in self.parser.flush():  # an unterminated last event still counts
            if event.data.strip():
                elements += (b",\r\n" if self.started else b"[") + event.data.encode()
                self.started = True
        await self.inner.write_eof(elements + (b"]" if self.started else b"[]"))


class JsonArrayTap:
    """The dispatcher's ClientTap hook, used only to re-frame a stream (see the module doc)."""

    async def body(self, ctx: RequestContext, raw: bytes) -> bytes:
        return raw

    def stream(self, resp, ctx: RequestContext) -> JsonArraySink:
        return JsonArraySink(resp)
