"""The Recorder: a bounded in-memory queue between the request path and the sinks.

    core ──submit(record)──► deque (queue_size) ──drain task──► metrics.observe_batch, redact
                                                                                       │
                                     ┌──────────────────────┬─────────────────────────┤
                                     ▼                      ▼                         ▼
                              sqlite buffer/task     jsonl buffer/task        http buffer/task

`submit()` never blocks and never raises, and does as little as it can on the request path: it
appends the record to the queue. When the queue is full (or the recorder stopped) the record is
dropped and counted, and observed in the metrics right away. The drain task takes the queued
records whenever `batch_size` are waiting or every `flush_interval_s` and, in slices of
DRAIN_SLICE records with other work in between, observes them in the metrics (one update per
series and slice), redacts them (secrets never reach a sink) and offers them to every sink;
each sink buffers, writes and retries on its own task (see `sinks.base`). With records disabled
the queue still feeds the metrics, and no sink.

`render_metrics()` has the Recorder observe what is still queued first (`observe_pending`), so
`/metrics` never lags behind the requests this process served.

`submit()` must be called from the event-loop thread (it is a plain function, call it without
await). Records submitted before `start()` wait in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterable

from . import metrics
from .config import RecordsConfig, SinkConfig
from .record import RequestRecord
from .redact import Redactor
from .sinks import Sink, build_sink

log = logging.getLogger("apex_ai_proxy.telemetry")

DRAIN_SLICE = 64  # records handled per event-loop turn by the drain task


class Recorder:
    def __init__(
        self,
        config: RecordsConfig | None = None,
        *,
        secrets: Iterable[str] = (),
        sinks: list[Sink] | None = None,
        observe_metrics: bool = True,
    ) -> None:
        """`secrets`: every provider key and gateway token, redacted wherever they appear.
        `sinks`: overrides the sinks built from `config.sinks` (tests, embedding)."""
        self.config = config or RecordsConfig()
        self.redactor = Redactor(secrets, body_limit=self.config.raw_body_limit_bytes)
        if sinks is None:
            sinks = [
                build_sink(c, name)
                for c, name in zip(self.config.sinks, _sink_names(self.config.sinks), strict=True)
            ]
        self.sinks = sinks if self.config.enabled else []
        for sink in self.sinks:
            sink.on_drop = self._sink_dropped
        self.observe_metrics = observe_metrics
        self.submitted = 0  # records accepted into the queue
        self.dropped = 0  # dropped at the queue; each sink counts its own drops
        self._queue: deque[RequestRecord] = deque()
        self._observed = 0  # the first this-many queued records are already in the metrics
        self._batch_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._needed = self.config.enabled or observe_metrics
        self._accepting = self._needed
        if observe_metrics:
            metrics.observe_before_render(self)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Replace the secrets to redact (config reload). Cheap when nothing changed."""
        self.redactor.set_secrets(secrets)

    def submit(self, record: RequestRecord) -> None:
        """Hand over a finished request's record. Never blocks, never raises.

        The record belongs to the recorder afterwards: do not modify it.
        """
        queue = self._queue
        if (
            self._accepting
            and len(queue) < self.config.queue_size
            and isinstance(record, RequestRecord)
        ):
            queue.append(record)
            self.submitted += 1
            if len(queue) >= self.config.batch_size:
                self._batch_ready.set()
            return
        try:
            self._reject(record)
        except Exception:  # a bug here must never fail a request
            log.exception("records: submit failed")

    def _reject(self, record: RequestRecord) -> None:
        if not isinstance(record, RequestRecord):
            raise TypeError(f"not a RequestRecord: {type(record).__name__}")
        if self.observe_metrics:
            metrics.observe(record)
        if self.config.enabled:
            self.dropped += 1
            metrics.count_dropped("queue")

    def observe_pending(self) -> None:
        """Observe the queued records not yet in the metrics (before `/metrics` renders)."""
        queue = self._queue
        if self.observe_metrics and self._observed < len(queue):
            metrics.observe_batch(itertools.islice(queue, self._observed, None))
        self._observed = len(queue)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        if not self._needed or self._task is not None:
            return
        self._accepting = True
        for sink in self.sinks:
            await sink.start()
        self._task = asyncio.create_task(self._drain_loop(), name="apex-records-drain")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, hand every queued record to the sinks, and give the sinks `grace`
        seconds (together) to write them; what is left then is dropped and counted."""
        self._accepting = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._dispatch()
        await asyncio.gather(*(sink.stop(grace) for sink in self.sinks))

    async def flush(self, timeout: float = 5.0) -> None:
        """Hand every queued record to the sinks now and wait until they wrote (or dropped) all
        they hold. For tests and tools; raises TimeoutError after `timeout` seconds."""
        self._dispatch()
        async with asyncio.timeout(timeout):
            while any(sink.buffered for sink in self.sinks):
                await asyncio.sleep(0.01)

    def stats(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "queued": len(self._queue),
            "dropped": self.dropped,
            "sinks": {
                s.name: {"written": s.written, "buffered": s.buffered, "dropped": s.dropped}
                for s in self.sinks
            },
        }

    async def _drain_loop(self) -> None:
        interval = self.config.flush_interval_s
        while True:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that arrives as the
            # event is set (CPython gh-86296), and `stop()` then waits on this loop forever
            # (issue 10 #7: SIGTERM after load never exited).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._batch_ready.wait()
            self._batch_ready.clear()
            while self._queue:
                try:
                    self._dispatch_slice()
                except Exception:
                    log.exception("records: dispatch failed")
                # Metrics and rows cost a few microseconds per record: let requests run
                # between slices, so the loop never pauses for a whole batch at once.
                await asyncio.sleep(0)

    def _dispatch(self) -> None:
        while self._queue:
            self._dispatch_slice()

    def _dispatch_slice(self) -> None:
        """Observe, redact and offer to the sinks the next slice of queued records (at most
        DRAIN_SLICE, and never more than `batch_size`: the batches sinks get)."""
        queue = self._queue
        size = min(DRAIN_SLICE, self.config.batch_size, len(queue))
        batch = [queue.popleft() for _ in range(size)]
        seen = min(self._observed, len(batch))
        self._observed -= seen
        if self.observe_metrics:
            try:
                metrics.observe_batch(batch[seen:] if seen else batch)
            except Exception:  # the sinks still get the batch
                log.exception("records: metrics failed")
        if not self.sinks or not batch:
            return
        raw = self.config.raw
        for record in batch:
            if not raw:
                record.raw = None
            self._redact(record)
        for sink in self.sinks:
            sink.offer(batch)

    def _redact(self, record: RequestRecord) -> None:
        try:
            self.redactor.redact_record(record)
        except Exception:  # never let an unredactable field through
            log.exception("records: redaction failed for %s", record.request_id)
            record.raw = None
            record.error_message = "[unredactable]"
            for attempt in record.attempts:
                attempt.reason = None

    def _sink_dropped(self, sink_name: str, count: int) -> None:
        metrics.count_dropped(sink_name, count)


def _sink_names(configs: Iterable[SinkConfig]) -> list[str]:
    """ "sqlite", "jsonl", and "http", "http2", ... when a type is configured twice."""
    seen: dict[str, int] = {}
    names = []
    for config in configs:
        seen[config.type] = seen.get(config.type, 0) + 1
        names.append(config.type if seen[config.type] == 1 else f"{config.type}{seen[config.type]}")
    return names
