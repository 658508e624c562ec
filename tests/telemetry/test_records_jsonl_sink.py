from __future__ import annotations

from pathlib import Path

import orjson
from records_helpers import build_record

from apex_ai_proxy.telemetry import JsonlSinkConfig, RawRecord
from apex_ai_proxy.telemetry.sinks import JsonlSink


async def test_one_line_per_record_appended_across_batches_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    records = [build_record(request_id=f"r{i}") for i in range(5)]
    records[4].raw = RawRecord({"h": "v"}, "request", None, None)
    for batch in (records[:2], records[2:]):  # two sink lifetimes: the file is appended to
        sink = JsonlSink(JsonlSinkConfig(path=str(path)))
        await sink.start()
        sink.offer(batch)
        await sink.stop()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines[:4]] == [r.to_dict() for r in records[:4]]
    last = orjson.loads(lines[4])
    assert last["request_id"] == "r4" and last["raw"]["request_body"] == "request"
    assert len(lines) == 5


async def test_file_removed_under_the_sink_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    sink = JsonlSink(JsonlSinkConfig(path=str(path)))
    await sink.start()
    sink.offer([build_record(request_id="before")])
    await sink.stop()
    path.unlink()  # what logrotate without copytruncate does
    sink = JsonlSink(JsonlSinkConfig(path=str(path)))
    await sink.start()
    sink.offer([build_record(request_id="after")])
    await sink.stop()
    assert [orjson.loads(line)["request_id"] for line in path.read_bytes().splitlines()] == [
        "after"
    ]
