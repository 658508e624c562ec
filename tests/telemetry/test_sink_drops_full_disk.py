"""Issue 10, item 10: a full disk made the SQLite sink store nothing, with no drop metric while it
lasted and no true word in the log. Every lost record must be counted in
`apex_records_dropped_total{stage=<sink>}` when it is lost, and the log must hold the real error
once per burst (then a summary when writes succeed again, or at shutdown), for every sink kind."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from records_helpers import build_record

from apex_ai_proxy.telemetry import Attempt, Recorder, RecordsConfig
from apex_ai_proxy.telemetry.config import HttpSinkConfig, JsonlSinkConfig, SqliteSinkConfig
from apex_ai_proxy.telemetry.sinks import HttpSink, JsonlSink, Sink, SqliteSink
from apex_ai_proxy.telemetry.sinks.drops import DropLog

BURSTS = 5
PER_BURST = 10
_names = itertools.count(1)


def dropped_metric(stage: str) -> float:
    return REGISTRY.get_sample_value("apex_records_dropped_total", {"stage": stage}) or 0.0


def big_record():
    """~10 KB: needs new database pages, so a database at its page limit cannot take it."""
    reasons = [Attempt("openai", "k", "m", 500, 1.0, "r" * 2000) for _ in range(5)]
    return build_record(attempts=reasons)


def log_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and f"records sink {name}:" in r.getMessage()
    ]


async def start(sink: Sink) -> Recorder:
    config = RecordsConfig(flush_interval_s=0.01, batch_size=PER_BURST, sinks=[])
    recorder = Recorder(config, sinks=[sink], observe_metrics=False)
    await recorder.start()
    return recorder


async def submit_bursts(recorder: Recorder, bursts: int = BURSTS) -> None:
    """`bursts` batches of PER_BURST records, each written (or lost) before the next."""
    for _ in range(bursts):
        for _ in range(PER_BURST):
            recorder.submit(big_record())
        await recorder.flush(timeout=5.0)


async def test_a_full_disk_drops_every_sqlite_record_counted_at_once_and_logged_once_per_burst(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apex_ai_proxy.telemetry")
    name = f"sqlite-full-{next(_names)}"
    sink = SqliteSink(SqliteSinkConfig(path=str(tmp_path / "records.db")), name)
    recorder = await start(sink)

    def disk_full() -> None:  # the file may not grow by a single page: a full disk to SQLite
        assert sink._conn is not None
        (pages,) = sink._conn.execute("PRAGMA page_count").fetchone()
        sink._conn.execute(f"PRAGMA max_page_count = {pages}")

    await sink.in_thread(disk_full)
    await submit_bursts(recorder)  # flush() returns once each burst is written or dropped

    total = BURSTS * PER_BURST
    assert (sink.dropped, sink.written) == (total, 0)
    assert dropped_metric(name) == total  # counted while the disk is still full
    (line,) = log_lines(caplog, name)
    assert "database or disk is full" in line

    def space_again() -> None:
        assert sink._conn is not None
        sink._conn.execute("PRAGMA max_page_count = 1073741823")

    await sink.in_thread(space_again)
    await submit_bursts(recorder, 1)
    assert sink.written == PER_BURST
    first, summary = log_lines(caplog, name)
    assert f"{total - PER_BURST} more record(s) dropped since" in summary
    assert "database or disk is full" in summary and "writing again" in summary
    await recorder.stop(grace=2.0)
    assert len(log_lines(caplog, name)) == 2  # nothing more to tell at shutdown


async def test_a_full_disk_drops_every_jsonl_record_counted_at_once_and_logged_once_per_burst(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apex_ai_proxy.telemetry")
    name = f"jsonl-full-{next(_names)}"
    sink = JsonlSink(JsonlSinkConfig(path="/dev/full"), name)  # every write: ENOSPC
    recorder = await start(sink)
    await submit_bursts(recorder)

    total = BURSTS * PER_BURST
    assert (sink.dropped, sink.written) == (total, 0)
    assert dropped_metric(name) == total
    (line,) = log_lines(caplog, name)
    assert "No space left on device" in line

    sink.path = str(tmp_path / "records.jsonl")  # the operator points it at a disk with room
    await submit_bursts(recorder, 1)
    assert sink.written == PER_BURST
    assert len((tmp_path / "records.jsonl").read_bytes().splitlines()) == PER_BURST
    first, summary = log_lines(caplog, name)
    assert f"{total - PER_BURST} more record(s) dropped since" in summary
    await recorder.stop(grace=2.0)
    assert len(log_lines(caplog, name)) == 2


async def test_a_failing_log_service_drops_counted_at_once_and_summed_up_at_shutdown(
    log_service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apex_ai_proxy.telemetry")
    service = await log_service(fail_first=10_000)
    name = f"http-full-{next(_names)}"
    config = HttpSinkConfig(
        base_url=service.base_url, project="p", logstore="requests", max_retries=0
    )
    sink = HttpSink(config, name)
    recorder = await start(sink)
    await submit_bursts(recorder)

    total = BURSTS * PER_BURST
    assert (sink.dropped, sink.written) == (total, 0)
    assert dropped_metric(name) == total
    (line,) = log_lines(caplog, name)
    assert "answered 500" in line
    await recorder.stop(grace=2.0)
    first, summary = log_lines(caplog, name)
    assert f"{total - PER_BURST} more record(s) dropped since" in summary
    assert "shutting down" in summary


def test_a_long_burst_of_drops_is_summed_up_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="apex_ai_proxy.telemetry")
    now = [0.0]
    drops = DropLog("sqlite-minute", clock=lambda: now[0])
    for second in range(0, 150):  # a batch of 10 lost every second for 150 s
        now[0] = float(second)
        drops.dropped(10, "OperationalError: database or disk is full")
    lines = [r.getMessage() for r in caplog.records if "sqlite-minute" in r.getMessage()]
    assert len(lines) == 3  # the first drop, then at 60 s and 120 s
    assert "dropped 10 record(s)" in lines[0] and "disk is full" in lines[0]
    assert "600 more record(s) dropped since" in lines[1] and "still failing" in lines[1]
    drops.recovered()
    lines = [r.getMessage() for r in caplog.records if "sqlite-minute" in r.getMessage()]
    assert len(lines) == 4 and "290 more record(s)" in lines[3] and "writing again" in lines[3]
