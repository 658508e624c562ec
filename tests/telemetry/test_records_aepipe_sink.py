"""The http sink's aepipe format, against a fake aepipe as strict as the real API (aepipe_fake)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml
from aepipe_fake import Aepipe, aepipe_service_fixture  # noqa: F401 - provides `aepipe_service`
from records_helpers import build_record

from apex_ai_proxy.config import ConfigError, load_config_file
from apex_ai_proxy.telemetry import HttpSinkConfig, RawRecord, Recorder, RecordsConfig
from apex_ai_proxy.telemetry.sinks import HttpSink

TOKEN = "aepipe-admin-token-0123"
PROJECT = "apex-ai-proxy"


def aepipe_config(service: Aepipe, **overrides: object) -> HttpSinkConfig:
    fields: dict[str, object] = {
        "format": "aepipe",
        "base_url": service.base_url + "/",
        "token": TOKEN,
        "project": PROJECT,
        "logstore": "requests",
        "raw_logstore": "raw",
        "timeout_s": 5,
    }
    fields.update(overrides)
    return HttpSinkConfig(**fields)


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_records_become_points_and_raw_captures_log_entries(aepipe_service) -> None:
    service = await aepipe_service(TOKEN)
    config = RecordsConfig(raw=True, flush_interval_s=0.05, sinks=[aepipe_config(service)])
    recorder = Recorder(config)
    await recorder.start()
    ok = build_record(request_id="r-ok", ts=1700000000.5, stream=True, bytes_in=300, bytes_out=900)
    failed = build_record(
        request_id="r-failed",
        endpoint="/v1/messages",
        status=429,
        error_type="rate_limited",
        ttfb_ms=None,
        prompt_tokens=None,
    )
    failed.raw = RawRecord({"Accept": "*/*"}, b'{"model": "gpt-4o"}', {"x-r": "1"}, "busy")
    recorder.submit(ok)
    recorder.submit(failed)
    await recorder.stop(grace=5)

    assert service.refused == []
    assert [path for path, _ in service.posts] == [
        f"/v1/{PROJECT}/requests/ingest",
        f"/v1/{PROJECT}/raw/log",
    ]
    first, second = service.points(PROJECT, "requests")
    assert first == {
        "event": "/v1/chat/completions",
        "level": "info",
        # the Worker's five, then ours
        "blobs": [
            "openai",
            "gpt-4o",
            "chat_completions",
            "200",
            "stream",
            "r-ok",
            "gpt-4o-2024-08-06",
            "team-a",
            "",
            "openai-chat",
            "routed",
            "",
            "gpt-4o",
        ],
        # duration, status, bytes in, bytes out (the Worker's), then ttfb, ttft, tokens, cost,
        # attempts, ts
        "doubles": [120.0, 200.0, 300.0, 900.0, 40.0, 0.0, 10.0, 5.0, 0.0, 0.0, 0.001, 1.0]
        + [1700000000.5],
        "payload": ok.to_dict(),
    }
    assert (second["event"], second["level"]) == ("/v1/messages", "error")
    assert second["blobs"][2:5] == ["messages", "429", "sync"]
    assert second["blobs"][8] == "rate_limited"
    assert second["payload"]["request_id"] == "r-failed" and "raw" not in second["payload"]
    (entry,) = service.logs(PROJECT, "raw")
    assert entry == {
        "message": "/v1/messages 429 120ms [openai/gpt-4o]",
        "level": "error",
        "provider": "openai",
        "model": "gpt-4o",
        "endpoint_type": "messages",
        "stream": False,
        "status": 429,
        "duration_ms": 120.0,
        "ts": failed.ts,
        "request_id": "r-failed",
        "request_headers": {"Accept": "*/*"},
        "request_body": '{"model": "gpt-4o"}',
        "response_headers": {"x-r": "1"},
        "response_body": "busy",
    }
    assert recorder.stats()["sinks"]["http"] == {"written": 2, "buffered": 0, "dropped": 0}


async def test_a_big_backlog_goes_in_posts_of_at_most_250(aepipe_service) -> None:
    service = await aepipe_service(TOKEN)
    sink = HttpSink(aepipe_config(service))
    await sink.start()
    batch = [build_record(request_id=f"b{i}") for i in range(600)]
    for record in batch:
        record.raw = RawRecord(None, "q", None, "a")
    sink.offer(batch)
    await wait_until(lambda: sink.written == 600)
    await sink.stop()
    assert service.refused == []
    sizes = [
        (path.rsplit("/", 1)[1], len(body.get("points", body.get("logs"))))
        for path, body in service.posts
    ]
    assert sizes == [("ingest", 250), ("ingest", 250), ("ingest", 100)] + [
        ("log", 250),
        ("log", 250),
        ("log", 100),
    ]
    ids = [point["blobs"][5] for point in service.points(PROJECT, "requests")]
    assert ids == [f"b{i}" for i in range(600)]


async def test_records_are_batched_not_posted_one_by_one(aepipe_service) -> None:
    service = await aepipe_service(TOKEN)
    config = RecordsConfig(batch_size=50, flush_interval_s=0.2, sinks=[aepipe_config(service)])
    recorder = Recorder(config)
    await recorder.start()
    for i in range(200):
        recorder.submit(build_record(request_id=f"c{i}"))
    await recorder.stop(grace=5)
    assert len(service.points(PROJECT, "requests")) == 200
    assert 1 <= len(service.posts) <= 4  # batches of 50, or fewer, bigger ones
    assert service.refused == []


async def test_without_raw_capture_nothing_goes_to_the_raw_logstore(aepipe_service) -> None:
    service = await aepipe_service(TOKEN)
    sink = HttpSink(aepipe_config(service))
    await sink.start()
    sink.offer([build_record(), build_record()])
    await wait_until(lambda: sink.written == 2)
    await sink.stop()
    assert {path for path, _ in service.posts} == {f"/v1/{PROJECT}/requests/ingest"}


async def test_long_values_keep_the_blobs_under_16_kb(aepipe_service) -> None:
    service = await aepipe_service(TOKEN)
    sink = HttpSink(aepipe_config(service))
    await sink.start()
    huge = "模" * 5000  # 15 KB of UTF-8 in one field; a few like it would pass 16 KB
    sink.offer([build_record(requested_model=huge, mapped_model=huge, upstream_model=huge)])
    await wait_until(lambda: sink.written + sink.dropped == 1)
    await sink.stop()
    assert service.refused == [] and sink.written == 1
    (point,) = service.points(PROJECT, "requests")
    assert point["payload"]["requested_model"] == huge  # the payload keeps it whole


async def test_a_wrong_token_is_refused_and_the_batch_dropped(aepipe_service, caplog) -> None:
    service = await aepipe_service("the-right-token")
    sink = HttpSink(aepipe_config(service))
    sink.backoff_base = 10  # a retry would make the test time out: a 401 is final
    await sink.start()
    with caplog.at_level(logging.WARNING, "apex_ai_proxy.telemetry"):
        sink.offer([build_record()])
        await wait_until(lambda: sink.dropped == 1)
    await sink.stop()
    assert service.refused == [(401, "unauthorized")]
    assert "401" in caplog.text and TOKEN not in caplog.text


async def test_the_token_is_not_in_the_errors_or_logs_of_a_failing_aepipe(
    aepipe_service, caplog
) -> None:
    # an aepipe (or a proxy before it) that quotes the token back in its error
    service = await aepipe_service(TOKEN, fail_with=500, fail_text=f"bad token {TOKEN}")
    sink = HttpSink(aepipe_config(service, max_retries=1))
    sink.backoff_base = 0.01
    await sink.start()
    with caplog.at_level(logging.DEBUG):
        sink.offer([build_record(), build_record()])
        await wait_until(lambda: sink.dropped == 2)
    await sink.stop()
    assert "500" in caplog.text  # the drop was logged, with its real cause
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(sink.config) and TOKEN not in str(sink.config)


def test_aepipe_names_and_token_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    def problems(**sink: object) -> list[str]:
        entry = {"type": "http", "format": "aepipe", "base_url": "https://a.example"}
        entry.update({"project": "apex-ai-proxy", "logstore": "requests", **sink})
        path = tmp_path / "apex.yaml"
        path.write_text(yaml.safe_dump({"records": {"sinks": [entry]}}))
        with pytest.raises(ConfigError) as err:
            load_config_file(path, {})
        return err.value.problems

    (bad_name,) = problems(token=TOKEN, logstore="requests/raw")
    assert "logstore" in bad_name and TOKEN not in bad_name
    (bad_raw,) = problems(token=TOKEN, raw_logstore="raw store")
    assert "raw_logstore" in bad_raw and TOKEN not in bad_raw
    (no_token,) = problems()
    assert "token" in no_token
    (empty_token,) = problems(token="")
    assert "token" in empty_token


def test_the_default_format_is_unchanged(tmp_path: Path) -> None:
    config = HttpSinkConfig(base_url="https://logs.example", project="p", logstore="l")
    assert config.format == "logs"
    assert HttpSink(config).url == "https://logs.example/projects/p/logstores/l"
