from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from records_helpers import build_record

from apex_ai_proxy.telemetry import (
    Attempt,
    JsonlSinkConfig,
    RawRecord,
    Recorder,
    RecordsConfig,
    SqliteSinkConfig,
)
from apex_ai_proxy.telemetry.config import StdoutSinkConfig

PROVIDER_KEY = "sk-ant-api03-PROVIDERSECRET-0123456789"
GATEWAY_TOKEN = "apx-live-GATEWAYSECRET-9876"
HEADER_VALUES = {
    "Authorization": "Bearer hdr-authorization-value",
    "x-api-key": "hdr-x-api-key-value",
    "api-key": "hdr-api-key-value",
    "x-goog-api-key": "hdr-goog-value",
    "cf-aig-authorization": "Bearer hdr-cf-aig-value",
    "X-APEX-AI-PROXY-TOKEN": "hdr-apex-token-value",
    "Cookie": "session=hdr-cookie-value",
}


def leaky_record(request_id: str) -> object:
    return build_record(
        request_id=request_id,
        status=401,
        error_type="authentication_error",
        error_message=f"upstream said: invalid key {PROVIDER_KEY}",
        attempts=[Attempt("anthropic", "key-1", "claude", 401, 10.0, f"bad key {PROVIDER_KEY}")],
        raw=RawRecord(
            request_headers=HEADER_VALUES | {"X-Trace": f"tok={GATEWAY_TOKEN}"},
            request_body=f'{{"note": "visible-request-text {GATEWAY_TOKEN} {PROVIDER_KEY}"}}'.encode(),
            response_headers={"Set-Cookie": "id=hdr-set-cookie-value", "X-Echo": PROVIDER_KEY},
            response_body=f'{{"error": "visible-response-text {PROVIDER_KEY}"}}',
        ),
    )


async def test_secrets_appear_nowhere_in_the_sqlite_and_jsonl_files(tmp_path: Path) -> None:
    db, jsonl = tmp_path / "records.db", tmp_path / "records.jsonl"
    config = RecordsConfig(
        raw=True,
        sinks=[SqliteSinkConfig(path=str(db)), JsonlSinkConfig(path=str(jsonl))],
    )
    recorder = Recorder(config, secrets=[PROVIDER_KEY, GATEWAY_TOKEN])
    await recorder.start()
    for i in range(3):
        recorder.submit(leaky_record(f"leak-{i}"))
    await recorder.stop(grace=5)

    files = [p for p in tmp_path.iterdir() if p.name.startswith("records.")]
    assert db in files and jsonl in files
    everything = b"".join(p.read_bytes() for p in files)
    # the records are there, with their harmless parts ...
    for visible in (b"leak-2", b"visible-request-text", b"visible-response-text", b"X-Trace"):
        assert visible in everything
    assert b"[REDACTED]" in everything
    # ... and no secret, in any form we stored
    forbidden = [PROVIDER_KEY, GATEWAY_TOKEN, "hdr-set-cookie-value", *HEADER_VALUES.values()]
    for secret in forbidden:
        assert secret.encode() not in everything, secret
        assert secret.split()[-1].encode() not in everything, secret
    line = orjson.loads(jsonl.read_bytes().splitlines()[0])
    assert line["raw"]["request_headers"]["Authorization"] == "[REDACTED]"
    assert line["attempts"][0]["reason"] == "bad key [REDACTED]"


async def test_raw_capture_is_discarded_when_raw_is_off(tmp_path: Path) -> None:
    jsonl = tmp_path / "records.jsonl"
    recorder = Recorder(RecordsConfig(sinks=[JsonlSinkConfig(path=str(jsonl))]))
    await recorder.start()
    recorder.submit(leaky_record("no-raw"))
    await recorder.stop()
    assert "raw" not in orjson.loads(jsonl.read_bytes())


async def test_a_full_queue_drops_and_counts_without_raising() -> None:
    recorder = Recorder(RecordsConfig(queue_size=3, sinks=[]))  # not started: nothing drains
    for i in range(5):
        recorder.submit(build_record(request_id=f"r{i}"))
    assert (recorder.submitted, recorder.dropped, recorder.queued) == (3, 2, 3)


async def test_submit_survives_a_record_that_breaks_every_rule() -> None:
    recorder = Recorder(RecordsConfig(sinks=[]))
    recorder.submit(object())  # type: ignore[arg-type]
    recorder.submit(build_record())
    assert recorder.queued == 1


async def test_records_flush_on_the_interval_before_a_batch_fills(tmp_path: Path) -> None:
    jsonl = tmp_path / "records.jsonl"
    config = RecordsConfig(
        batch_size=1000, flush_interval_s=0.05, sinks=[JsonlSinkConfig(path=str(jsonl))]
    )
    recorder = Recorder(config)
    await recorder.start()
    recorder.submit(build_record(request_id="lonely"))
    async with asyncio.timeout(5):
        while not (jsonl.exists() and jsonl.read_bytes()):
            await asyncio.sleep(0.01)
    await recorder.stop()
    assert orjson.loads(jsonl.read_bytes())["request_id"] == "lonely"


async def test_disabled_recorder_keeps_nothing_and_counts_no_drops() -> None:
    recorder = Recorder(RecordsConfig(enabled=False))
    await recorder.start()
    recorder.submit(build_record())
    await recorder.stop()
    assert (recorder.sinks, recorder.queued, recorder.dropped) == ([], 0, 0)


def test_default_sinks_are_one_sqlite_file_and_sinks_are_named_by_type() -> None:
    assert RecordsConfig().sinks == [SqliteSinkConfig(path="apex-records.db", retention_days=7)]
    config = RecordsConfig(
        sinks=[StdoutSinkConfig(), JsonlSinkConfig(path="a"), JsonlSinkConfig(path="b")]
    )
    assert [s.name for s in Recorder(config).sinks] == ["stdout", "jsonl", "jsonl2"]


async def test_the_drain_lets_other_work_run_between_slices(tmp_path: Path) -> None:
    """A big backlog is observed and handed to the sinks slice by slice, not in one go that
    would hold the event loop (and every request) for the whole batch."""
    config = RecordsConfig(
        batch_size=2_000,
        queue_size=10_000,
        flush_interval_s=60,
        sinks=[JsonlSinkConfig(path=str(tmp_path / "r.jsonl"))],
    )
    recorder = Recorder(config)
    await recorder.start()
    for i in range(2_000):
        recorder.submit(build_record(request_id=f"r{i}"))  # the 2,000th wakes the drain
    seen_between: list[int] = []

    async def other_work() -> None:
        for _ in range(100):
            seen_between.append(recorder.queued)
            await asyncio.sleep(0)

    await other_work()
    assert seen_between[0] == 2_000  # the drain had not started yet
    # other work ran while the drain was partway through the backlog
    assert any(0 < queued < 2_000 for queued in seen_between), seen_between
    await recorder.flush()
    await recorder.stop()
    assert len((tmp_path / "r.jsonl").read_bytes().splitlines()) == 2_000
