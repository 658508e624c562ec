"""The one interface every sink implements, and the buffering/retry machinery they share.

A sink gets batches through `offer()`, which never blocks: the batch goes into the sink's own
bounded buffer, or is dropped (and counted) when that buffer is full. The sink's own task takes
batches out and calls `write()`; a failed write is retried with exponential backoff, up to
`max_retries`, then dropped (counted). So a slow or hanging sink only ever fills its own
buffer; the Recorder and the other sinks keep going.

A sink may set `coalesce` (records): the batches waiting in its buffer are then written together,
up to that many records per `write()`, and `min_write_interval` (seconds) lets batches gather
between two writes while the buffer is less than half full. Both trade a little delay for fewer,
bigger writes (one SQLite transaction per write costs far more than one row).

Subclasses implement `write(batch)` (raise to signal failure; raise `SinkError(..,
retryable=False)` when retrying cannot help) and optionally `open()`, `close()`, `maintain()`
(called on start and then every `maintenance_interval` seconds, e.g. retention pruning).
A full or read-only disk (ENOSPC, EDQUOT, EROFS, EFBIG, EACCES, EPERM; `retryable()` in each
sink) is not retried: those batches are dropped at once, so the drop counter tells the truth
while the outage lasts instead of after minutes of backoff, and newer records are not held
behind a write that cannot succeed. Every drop is counted when it happens and logged once per
burst with its real error (`drops.DropLog`).

`ThreadedSink` adds a private single-thread executor for sinks that do blocking I/O (files,
SQLite): all their I/O runs on that one thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from ..record import RequestRecord
from .drops import DropLog

log = logging.getLogger("apex_ai_proxy.telemetry")
T = TypeVar("T")
Batch = list[RequestRecord]
DropCallback = Callable[[str, int], None]
# The storage is full or refuses writes: retrying within seconds cannot help.
UNWRITABLE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}
)


class SinkError(Exception):
    """A write failed. `retryable=False` drops the batch at once."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink:
    maintenance_interval: float | None = None
    coalesce: int = 0  # > 0: write up to this many buffered records at once
    min_write_interval: float = 0.0  # seconds between writes while the buffer is not half full
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def __init__(self, name: str, *, buffer_size: int = 10_000, max_retries: int = 5) -> None:
        self.name = name
        self.buffer_size = buffer_size
        self.max_retries = max_retries
        self.written = 0  # records written successfully
        self.dropped = 0  # records lost: buffer overflow, retries exhausted, shutdown
        self.on_drop: DropCallback | None = None  # set by the Recorder (metrics)
        self._batches: deque[Batch] = deque()
        self._buffered = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.drop_log = DropLog(name)

    # --- what subclasses implement -------------------------------------------------------

    async def open(self) -> None:
        """Acquire resources (connections, files). Called once by `start()`."""

    def prepare(self, batch: Batch) -> list[Any]:
        """Turn an offered batch into what `write()` gets, one item per record (the records
        themselves by default). Runs on the event loop: for cheap CPU work that would otherwise
        hold the GIL in a sink thread."""
        return batch

    async def write(self, batch: Batch) -> None:
        raise NotImplementedError

    async def maintain(self) -> None:
        """Periodic housekeeping, every `maintenance_interval` seconds when that is set."""

    async def close(self) -> None:
        """Release resources. Called once by `stop()`, after the last write."""

    def retryable(self, exc: Exception) -> bool:
        """Whether a write that raised `exc` may succeed if tried again soon."""
        if isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS:
            return False
        return getattr(exc, "retryable", True)

    # --- the machinery --------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._buffered

    def offer(self, batch: Batch) -> None:
        """Queue a batch for writing; drop it (counted) if the buffer has no room. Never blocks."""
        if self._closing or self._buffered + len(batch) > self.buffer_size:
            reason = "stopped" if self._closing else f"its buffer of {self.buffer_size} is full"
            self._drop(len(batch), reason)
            return
        self._batches.append(self.prepare(batch))
        self._buffered += len(batch)
        self._wake.set()

    async def start(self) -> None:
        await self.open()
        self._task = asyncio.create_task(self._run(), name=f"apex-records-sink-{self.name}")

    async def stop(self, grace: float = 5.0) -> None:
        """Write what is buffered within `grace` seconds, drop the rest, release resources."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._buffered:
            self._drop(self._buffered, f"not written within the shutdown grace of {grace}s")
            self._batches.clear()
            self._buffered = 0
        self.drop_log.close()
        try:
            await asyncio.wait_for(self.close(), max(grace, 1.0))
        except Exception:
            log.exception("records sink %s: close failed", self.name)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # First maintenance right away: a gateway that was down for days prunes on start.
        next_maintenance = loop.time() if self.maintenance_interval else None
        last_write = -float("inf")
        while True:
            if next_maintenance is not None and loop.time() >= next_maintenance:
                await self._maintain_safely()
                next_maintenance = loop.time() + self.maintenance_interval  # type: ignore[operator]
            if not self._batches:
                if self._closing:
                    return
                self._wake.clear()
                timeout = None if next_maintenance is None else next_maintenance - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            wait = last_write + self.min_write_interval - loop.time()
            if wait > 0 and not self._closing and self._buffered * 2 < self.buffer_size:
                await asyncio.sleep(wait)
                continue
            count, batch = self._take()
            await self._write_with_retries(batch)
            last_write = loop.time()
            for _ in range(count):
                self._batches.popleft()
            self._buffered -= len(batch)

    def _take(self) -> tuple[int, Batch]:
        """(how many buffered batches, their records) for the next write; nothing is removed."""
        first = self._batches[0]
        if self.coalesce <= len(first) or len(self._batches) == 1:
            return 1, first
        merged: Batch = []
        count = 0
        for batch in self._batches:
            if merged and len(merged) + len(batch) > self.coalesce:
                break
            merged.extend(batch)
            count += 1
        return count, merged

    async def _write_with_retries(self, batch: Batch) -> None:
        for attempt in range(self.max_retries + 1):
            try:
                await self.write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.retryable(exc) or attempt == self.max_retries:
                    self._drop(len(batch), f"{_describe(exc)} (after {attempt + 1} attempt(s))")
                    return
                delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            else:
                self.written += len(batch)
                if self.drop_log.in_burst:
                    self.drop_log.recovered()
                return

    async def _maintain_safely(self) -> None:
        try:
            await self.maintain()
        except Exception:
            log.exception("records sink %s: maintenance failed", self.name)

    def _drop(self, count: int, reason: str) -> None:
        """Count `count` lost records now (metrics too); the log hears of it once per burst."""
        self.dropped += count
        if self.on_drop is not None:
            self.on_drop(self.name, count)
        self.drop_log.dropped(count, reason)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class ThreadedSink(Sink):
    """A sink whose blocking I/O all runs on one private thread."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"apex-records-{self.name}"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stop(self, grace: float = 5.0) -> None:
        await super().stop(grace)
        if self._executor is not None:
            # Never wait here for a write that hangs; nothing more will be queued on the thread.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
