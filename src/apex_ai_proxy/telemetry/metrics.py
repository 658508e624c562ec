"""Prometheus metrics, fed from request records.

`Recorder.submit()` calls `observe(record)` for every record (even when records are disabled or
the queue is full), so the core never calls `observe` itself. The core only reports the one
thing records do not carry: `set_keys_in_cooldown(provider, count)` whenever its health state
changes. `render_metrics()` gives the body and content type for `GET /metrics`.

Series (prefix `apex_`):

    apex_requests_total{endpoint, model, provider, status}
    apex_request_duration_seconds{endpoint, model}          histogram, to end of stream
    apex_ttft_seconds{model, provider}                      histogram, streams only
    apex_tokens_total{model, provider, kind}                kind: prompt|completion|cached|reasoning
    apex_upstream_attempts_total{provider, outcome}         outcome: ok|client_error|rate_limited|
                                                            server_error|timeout|connect_error
    apex_failovers_total{model}                             attempts beyond the first
    apex_keys_in_cooldown{provider}                         gauge, set by the core
    apex_records_dropped_total{stage}                       stage: "queue" or a sink name

`model` is the mapped model name ("" → "none" when resolution failed), so a client sending
random model names cannot blow up the label set.

Multiprocess mode (`apex-ai-proxy serve --workers N`): prometheus_client decides at import time
whether it writes to per-process files, so the launcher must, in the parent and BEFORE anything
imports prometheus_client (this module imports it lazily, on first use, for that reason):

    from apex_ai_proxy.telemetry.metrics import prepare_multiprocess_dir, mark_process_dead
    prepare_multiprocess_dir("/tmp/apex-metrics")  # empties it, sets PROMETHEUS_MULTIPROC_DIR
    ... start the workers (they inherit the environment variable) ...
    mark_process_dead(pid)                          # when a worker exits (drops its live gauges)

Every worker's `render_metrics()` then aggregates the files of all workers, so whichever worker
answers `/metrics` reports for the whole server. Without PROMETHEUS_MULTIPROC_DIR everything
lives in this process's default registry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .record import Attempt, RequestRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")

_metrics: SimpleNamespace | None = None


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create (or empty) the shared metrics directory and point PROMETHEUS_MULTIPROC_DIR at it.

    Call once in the launcher before the workers start and before prometheus_client is
    imported; files left from a previous run would otherwise be added to this run's counters.
    """
    directory = Path(path)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def mark_process_dead(pid: int) -> None:
    """Tell the metrics that worker `pid` is gone (its live gauges stop counting)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)


def _get() -> SimpleNamespace:
    global _metrics
    if _metrics is None:
        from prometheus_client import Counter, Gauge, Histogram

        _metrics = SimpleNamespace(
            requests=Counter(
                "apex_requests_total",
                "Requests served, by final status.",
                ["endpoint", "model", "provider", "status"],
            ),
            duration=Histogram(
                "apex_request_duration_seconds",
                "Time from request to last byte sent.",
                ["endpoint", "model"],
                buckets=DURATION_BUCKETS,
            ),
            ttft=Histogram(
                "apex_ttft_seconds",
                "Time to first token of streamed responses.",
                ["model", "provider"],
                buckets=TTFT_BUCKETS,
            ),
            tokens=Counter("apex_tokens_total", "Tokens used.", ["model", "provider", "kind"]),
            attempts=Counter(
                "apex_upstream_attempts_total",
                "Attempts against upstreams, by outcome.",
                ["provider", "outcome"],
            ),
            failovers=Counter(
                "apex_failovers_total", "Attempts beyond the first for one request.", ["model"]
            ),
            cooldown=Gauge(
                "apex_keys_in_cooldown",
                "API keys currently cooling down.",
                ["provider"],
                multiprocess_mode="livemax",
            ),
            dropped=Counter(
                "apex_records_dropped_total", "Request records lost before a sink.", ["stage"]
            ),
        )
    return _metrics


def attempt_outcome(attempt: Attempt) -> str:
    status = attempt.status
    if status is None:
        reason = (attempt.reason or "").lower()
        return "timeout" if "timeout" in reason else "connect_error"
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error"


def observe(record: RequestRecord) -> None:
    """Update every metric from one finished request."""
    m = _get()
    model = record.mapped_model or "none"
    provider = record.provider or "none"
    m.requests.labels(record.endpoint, model, provider, str(record.status)).inc()
    if record.duration_ms is not None:
        m.duration.labels(record.endpoint, model).observe(record.duration_ms / 1000)
    if record.stream and record.ttft_ms is not None:
        m.ttft.labels(model, provider).observe(record.ttft_ms / 1000)
    for kind, count in zip(
        TOKEN_KINDS,
        (
            record.prompt_tokens,
            record.completion_tokens,
            record.cached_tokens,
            record.reasoning_tokens,
        ),
        strict=True,
    ):
        if count:
            m.tokens.labels(model, provider, kind).inc(count)
    for attempt in record.attempts:
        m.attempts.labels(attempt.provider or "none", attempt_outcome(attempt)).inc()
    if len(record.attempts) > 1:
        m.failovers.labels(model).inc(len(record.attempts) - 1)


def set_keys_in_cooldown(provider: str, count: int) -> None:
    """The core calls this when the number of cooling-down keys of `provider` changes."""
    _get().cooldown.labels(provider).set(count)


def count_dropped(stage: str, count: int = 1) -> None:
    _get().dropped.labels(stage).inc(count)


def render_metrics() -> tuple[bytes, str]:
    """(body, content type) for `GET /metrics`, aggregated over all workers in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _get()  # every series is listed, even before the first request
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
