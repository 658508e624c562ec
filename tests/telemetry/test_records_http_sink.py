from __future__ import annotations

import asyncio
from pathlib import Path

from records_helpers import LogService, build_record

from apex_ai_proxy.telemetry import (
    HttpSinkConfig,
    JsonlSinkConfig,
    RawRecord,
    Recorder,
    RecordsConfig,
)
from apex_ai_proxy.telemetry.sinks import HttpSink


def http_config(service: LogService, **overrides: object) -> HttpSinkConfig:
    fields: dict[str, object] = {
        "base_url": service.base_url + "/",
        "token": "log-token-123",
        "project": "apex",
        "logstore": "requests",
        "raw_logstore": "requests-raw",
        "timeout_s": 5,
    }
    fields.update(overrides)
    return HttpSinkConfig(**fields)


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_batches_arrive_on_the_logstore_paths_with_the_bearer(log_service) -> None:
    service = await log_service()
    config = RecordsConfig(
        raw=True, batch_size=2, flush_interval_s=0.05, sinks=[http_config(service)]
    )
    recorder = Recorder(config)
    await recorder.start()
    records = [build_record(request_id=f"r{i}") for i in range(3)]
    records[1].raw = RawRecord({"Accept": "*/*"}, b'{"model": "gpt-4o"}', None, "{}")
    for record in records:
        recorder.submit(record)
    await recorder.stop(grace=5)

    assert {path for path, _, _ in service.posts} == {
        "/projects/apex/logstores/requests",
        "/projects/apex/logstores/requests-raw",
    }
    assert {auth for _, auth, _ in service.posts} == {"Bearer log-token-123"}
    assert [log["request_id"] for log in service.logs("/requests")] == ["r0", "r1", "r2"]
    assert all("raw" not in log for log in service.logs("/requests"))
    (raw,) = service.logs("/requests-raw")
    assert raw["request_id"] == "r1" and raw["request_body"] == '{"model": "gpt-4o"}'
    assert recorder.stats()["sinks"]["http"] == {"written": 3, "buffered": 0, "dropped": 0}


async def test_a_500_is_retried_until_the_batch_is_accepted(log_service) -> None:
    service = await log_service(fail_first=2)
    sink = HttpSink(http_config(service, raw_logstore=None))
    sink.backoff_base = 0.01
    await sink.start()
    sink.offer([build_record(request_id="retry-me")])
    await wait_until(lambda: sink.written == 1)
    await sink.stop()
    assert service.fail_first == 0  # both failures were consumed
    assert [log["request_id"] for log in service.logs("/requests")] == ["retry-me"]
    assert sink.dropped == 0


async def test_a_batch_is_dropped_and_counted_when_retries_run_out(log_service) -> None:
    service = await log_service(fail_first=100)
    sink = HttpSink(http_config(service, max_retries=2))
    sink.backoff_base = 0.001
    await sink.start()
    sink.offer([build_record(), build_record()])
    await wait_until(lambda: sink.dropped == 2)
    await sink.stop()
    assert service.fail_first == 97  # one try and two retries
    assert service.posts == []


async def test_a_hanging_log_service_never_blocks_submit_or_the_other_sinks(
    log_service, tmp_path: Path
) -> None:
    service = await log_service(hang=True)
    jsonl = tmp_path / "records.jsonl"
    config = RecordsConfig(
        queue_size=50,
        batch_size=5,
        flush_interval_s=0.01,
        sinks=[
            http_config(service, buffer_size=10, timeout_s=60),
            JsonlSinkConfig(path=str(jsonl)),
        ],
    )
    recorder = Recorder(config)
    await recorder.start()
    http_sink = recorder.sinks[0]

    for round_ in range(10):
        for i in range(20):
            recorder.submit(build_record(request_id=f"r{round_}-{i}"))
        await asyncio.sleep(0.02)  # let the drain task and the sinks run
    await wait_until(lambda: recorder.queued == 0)
    await service.arrived.wait()

    assert recorder.submitted == 200 and recorder.dropped == 0  # the recorder kept accepting
    assert http_sink.buffered <= 10
    # one batch is stuck in flight, the rest overflowed the http sink's own buffer
    assert http_sink.dropped >= 200 - 10 - 5
    await asyncio.wait_for(recorder.stop(grace=0.2), 5)
    assert http_sink.dropped + http_sink.written == 200
    assert len(jsonl.read_bytes().splitlines()) == 200  # the healthy sink got everything
    assert recorder.stats()["sinks"]["jsonl"]["dropped"] == 0


async def test_a_rejected_batch_is_not_retried(log_service) -> None:
    service = await log_service()
    sink = HttpSink(http_config(service, logstore="x"))
    sink.url = service.base_url + "/nowhere"  # the service answers 404 here
    sink.backoff_base = 10  # a retry would make the test time out
    await sink.start()
    sink.offer([build_record()])
    await wait_until(lambda: sink.dropped == 1)
    await sink.stop()
    assert service.posts == []
