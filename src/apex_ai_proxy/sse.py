"""Incremental Server-Sent Events parsing and encoding.

The one SSE parser of the project. It is fed raw chunks as they arrive from the network and
yields complete events; it is correct across chunk boundaries, accepts LF, CRLF and CR line
endings, `data:` with or without the space, comment lines (keep-alives) and multi-line data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    """Feed bytes, get whole events. Keeps only the unfinished tail between calls."""

    __slots__ = ("_buffer", "_event", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A lone CR at the very end may be the first half of CRLF: wait for the next chunk.
            if buffer.endswith(b"\r"):
                self._buffer = buffer
                return []
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._data or self._event is not None:
            return self._feed_lines(buffer)
        # Fast path for what nearly every upstream sends: blocks of one `data: ` line each.
        end = buffer.rfind(b"\n\n")
        if end < 0:
            return self._feed_lines(buffer)
        self._buffer = buffer[end + 2 :]
        events: list[SSEEvent] = []
        for block in buffer[:end].split(b"\n\n"):
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append(SSEEvent(None, block[6:].decode("utf-8", "replace")))
            elif block:
                events.extend(self._feed_lines(block + b"\n\n", keep_tail=False))
        return events

    def _feed_lines(self, buffer: bytes, keep_tail: bool = True) -> list[SSEEvent]:
        """The general case, line by line: multi-line data, `event:` fields, comments."""
        lines = buffer.split(b"\n")
        tail = lines.pop()
        if keep_tail:
            self._buffer = tail
        events: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data or self._event is not None:
                    events.append(SSEEvent(self._event, "\n".join(self._data)))
                    self._event, self._data = None, []
                continue
            line = raw.decode("utf-8", "replace")
            if line[0] == ":":
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
        return events

    def flush(self) -> list[SSEEvent]:
        """Events left when the stream ends without a final blank line."""
        events = self.feed(b"\n\n") if (self._buffer or self._data) else []
        self._buffer = b""
        return events


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame; `data` is already-serialized JSON (one line)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
