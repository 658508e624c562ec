"""JSON Lines sink: one record per line, appended to a file (raw capture included when on).

Each batch is one `write()` on a file opened with O_APPEND, so several processes can append to
the same file without interleaving lines. Rotation is left to the usual tools (logrotate with
copytruncate); the file is reopened if it disappears.
"""

from __future__ import annotations

import os

import orjson

from ..config import JsonlSinkConfig
from ..record import RequestRecord
from .base import Batch, ThreadedSink


def encode_line(record: RequestRecord, *, include_raw: bool = True) -> bytes:
    return orjson.dumps(record.to_dict(include_raw=include_raw), option=orjson.OPT_APPEND_NEWLINE)


def encode_lines(batch: Batch, *, include_raw: bool = True) -> bytes:
    return b"".join(encode_line(record, include_raw=include_raw) for record in batch)


class JsonlSink(ThreadedSink):
    def __init__(self, config: JsonlSinkConfig, name: str = "jsonl") -> None:
        super().__init__(name, buffer_size=config.buffer_size, max_retries=config.max_retries)
        self.path = config.path
        self._fd: int | None = None

    def prepare(self, batch: Batch) -> list[bytes]:
        """The lines, encoded on the event loop (see Sink.prepare); the thread only writes."""
        return [encode_line(record) for record in batch]

    async def write(self, batch: list[bytes]) -> None:
        await self.in_thread(self._append, b"".join(batch))

    async def close(self) -> None:
        await self.in_thread(self._close)

    def _append(self, data: bytes) -> None:
        if self._fd is not None and not os.path.exists(self.path):
            self._close()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
