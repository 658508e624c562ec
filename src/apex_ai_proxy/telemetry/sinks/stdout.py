"""Stdout sink: one JSON line per record (without the raw capture), for container log drivers."""

from __future__ import annotations

import sys

from ..config import StdoutSinkConfig
from .base import Batch, ThreadedSink
from .jsonl import encode_lines


class StdoutSink(ThreadedSink):
    def __init__(self, config: StdoutSinkConfig, name: str = "stdout") -> None:
        super().__init__(name, buffer_size=config.buffer_size, max_retries=config.max_retries)

    async def write(self, batch: Batch) -> None:
        # A full pipe blocks the writer: that happens on the sink thread, never the event loop.
        await self.in_thread(self._emit, batch)

    @staticmethod
    def _emit(batch: Batch) -> None:
        data = encode_lines(batch, include_raw=False)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
