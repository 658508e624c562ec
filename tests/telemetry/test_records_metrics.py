from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from records_helpers import build_record

from apex_ai_proxy.telemetry import (
    Attempt,
    Recorder,
    RecordsConfig,
    allow_label_values,
    mark_process_dead,
    prepare_multiprocess_dir,
    render_metrics,
    set_keys_in_cooldown,
)
from apex_ai_proxy.telemetry.metrics import MULTIPROC_ENV

SRC = Path(__file__).resolve().parents[2] / "src"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_submitted_record_is_in_every_series_when_the_metrics_render() -> None:
    allow_label_values(["metrics-model"], ["anthropic", "openai", "azure"])  # as a config would
    labels = {"endpoint": "/v1/messages", "model": "metrics-model", "provider": "anthropic"}
    before = {
        "requests": value("apex_requests_total", **labels, status="200"),
        "duration": value(
            "apex_request_duration_seconds_count", endpoint="/v1/messages", model="metrics-model"
        ),
        "ttft": value("apex_ttft_seconds_count", model="metrics-model", provider="anthropic"),
        "prompt": value(
            "apex_tokens_total", model="metrics-model", provider="anthropic", kind="prompt"
        ),
        "rate_limited": value(
            "apex_upstream_attempts_total", provider="openai", outcome="rate_limited"
        ),
        "timeout": value("apex_upstream_attempts_total", provider="azure", outcome="timeout"),
        "failovers": value("apex_failovers_total", model="metrics-model"),
        "dropped": value("apex_records_dropped_total", stage="queue"),
    }
    record = build_record(
        endpoint="/v1/messages",
        mapped_model="metrics-model",
        provider="anthropic",
        stream=True,
        ttft_ms=250.0,
        duration_ms=1500.0,
        prompt_tokens=100,
        attempts=[
            Attempt("openai", "k1", "gpt-4o", 429, 5.0, "rate_limited"),
            Attempt("azure", "k2", "gpt-4o", None, 30000.0, "read timeout"),
            Attempt("anthropic", "k3", "claude", 200, 900.0),
        ],
    )
    recorder = Recorder(RecordsConfig(queue_size=1, sinks=[]))
    recorder.submit(record)
    recorder.submit(build_record(mapped_model="other"))  # queue full: dropped, counted
    # submit() only queues; rendering observes what is still queued (the drain does otherwise)
    assert value("apex_requests_total", **labels, status="200") == before["requests"]
    render_metrics()

    assert value("apex_requests_total", **labels, status="200") == before["requests"] + 1
    assert (
        value("apex_request_duration_seconds_count", endpoint="/v1/messages", model="metrics-model")
        == before["duration"] + 1
    )
    assert (
        value("apex_ttft_seconds_count", model="metrics-model", provider="anthropic")
        == before["ttft"] + 1
    )
    assert (
        value("apex_tokens_total", model="metrics-model", provider="anthropic", kind="prompt")
        == before["prompt"] + 100
    )
    assert (
        value("apex_upstream_attempts_total", provider="openai", outcome="rate_limited")
        == before["rate_limited"] + 1
    )
    assert (
        value("apex_upstream_attempts_total", provider="azure", outcome="timeout")
        == before["timeout"] + 1
    )
    assert value("apex_failovers_total", model="metrics-model") == before["failovers"] + 2
    assert value("apex_records_dropped_total", stage="queue") == before["dropped"] + 1


def test_render_lists_the_series_in_prometheus_text_format() -> None:
    set_keys_in_cooldown("groq", 2)
    body, content_type = render_metrics()
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'apex_keys_in_cooldown{provider="groq"} 2.0' in text
    for name in ("apex_requests_total", "apex_request_duration_seconds", "apex_ttft_seconds",
                 "apex_tokens_total", "apex_upstream_attempts_total", "apex_failovers_total",
                 "apex_records_dropped_total"):  # fmt: skip
        assert f"# TYPE {name} " in text


WORKER = """
import sys
from apex_ai_proxy.telemetry import RequestRecord, observe, render_metrics, set_keys_in_cooldown
from apex_ai_proxy.telemetry import allow_label_values
allow_label_values(["mp"], ["p"])
observe(RequestRecord("r", "/v1/chat/completions", mapped_model="mp", provider="p", status=200))
set_keys_in_cooldown("p", int(sys.argv[1]))
sys.stdout.buffer.write(render_metrics()[0])
"""


def run_worker(cooldown: int) -> tuple[int, str]:
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(cooldown)],
        env=env,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return done.returncode, done.stdout.decode()


def test_multiprocess_mode_aggregates_workers_and_forgets_dead_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "placeholder")  # restored after the test
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999.db").write_bytes(b"left over from the last run")
    prepare_multiprocess_dir(directory)
    assert os.environ[MULTIPROC_ENV] == str(directory)
    assert list(directory.iterdir()) == []

    first = subprocess.Popen(
        [sys.executable, "-c", WORKER, "3"], env=os.environ | {"PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert first.wait(timeout=30) == 0
    _, text = run_worker(1)
    requests = (
        'apex_requests_total{endpoint="/v1/chat/completions",model="mp",provider="p",status="200"}'
    )
    assert f"{requests} 2.0" in text  # both workers counted
    assert 'apex_keys_in_cooldown{provider="p"} 1.0' in text  # the value set last wins

    mark_process_dead(first.pid)
    _, text = run_worker(0)
    assert f"{requests} 3.0" in text  # counters survive their process
    assert 'apex_keys_in_cooldown{provider="p"} 0.0' in text  # see test_metrics_cooldown_gauge
