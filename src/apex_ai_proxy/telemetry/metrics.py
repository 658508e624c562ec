"""Prometheus metrics, fed from request records.

Every record handed to `Recorder.submit()` is observed (even when records are disabled or the
queue is full), so the core never calls `observe` itself. To keep the request path cheap the
Recorder observes in batches when it drains its queue; `render_metrics()` first has every live
Recorder observe what is still queued, so `/metrics` is always up to date for this process (in
multiprocess mode another worker's last `flush_interval_s` may still be queued in that worker). The core only reports the one
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
    apex_keys_degraded{provider}                            gauge, keys out for repeated faults
    apex_endpoints_degraded{provider}                       gauge, endpoints tried last for them
    apex_pool_keys{provider,state}                          gauge, key × model pairs per state
    apex_pool_state_fallbacks                               gauge, ledger calls served locally
                                                            while Redis failed (this process)
    apex_records_dropped_total{stage}                       stage: "queue" or a sink name

Every label value comes from a fixed set, so no client can grow the series (each costs memory
for the life of the process, and bytes in every scrape): a 404's path, a random model name or
`name#provider`, a mapping header or a passthrough origin all land on a few values.

    endpoint   a gateway route name (ENDPOINTS), "passthrough", or "other"
    model      a configured model name (the mapped model, without `#provider`), "none" when the
               request never resolved one, or "other"
    provider   a configured provider, "passthrough" (its origin is the client's choice), "none"
               before one answered, or "other"

The configured names are registered by the gateway at start-up (`allow_label_values`); before
that, and for any name not registered, the value is "other".

Multiprocess mode (`apex-ai-proxy serve --workers N`): prometheus_client decides at import time
whether it writes to per-process files, so the launcher must, in the parent and BEFORE anything
imports prometheus_client (this module imports it lazily, on first use, for that reason):

    from apex_ai_proxy.telemetry.metrics import prepare_multiprocess_dir, mark_process_dead
    prepare_multiprocess_dir("/tmp/apex-metrics")  # empties it, sets PROMETHEUS_MULTIPROC_DIR
    ... start the workers (they inherit the environment variable) ...
    mark_process_dead(pid)                          # when a worker exits (drops its live gauges)

Every worker's `render_metrics()` then aggregates the files of all workers, so whichever worker
answers `/metrics` reports for the whole server. `apex_keys_in_cooldown` is aggregated as the
most recently set value of the live workers: cooldowns are shared by the workers and the
answering worker sets the gauge just before it renders, so another worker's value from an earlier
scrape is stale (the maximum of them stayed at a past peak). Without PROMETHEUS_MULTIPROC_DIR
everything lives in this process's default registry.
"""

from __future__ import annotations

import os
import shutil
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .record import Attempt, RequestRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")
ENDPOINTS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/responses/{id}",
        "/v1/responses/{id}/input_items",
        "/v1/responses/{id}/cancel",
        "/v1/models",
        "/v1beta/models",  # the Gemini API (endpoints/gemini.py): the model is not in the label
        "/v1beta/models:generateContent",
        "/v1beta/models:streamGenerateContent",
        "/v1beta/models:countTokens",
        "/metrics",
        "/healthz",
        "/readyz",
    }
)
OTHER = "other"
PASSTHROUGH = "passthrough"

_metrics: SimpleNamespace | None = None
# Label children by label values, per metric: `labels()` validates and locks on every call.
_children: dict[str, dict[tuple[str, ...], Any]] = {}
# Recorders whose queued records must be observed before the metrics are rendered.
_pending_sources: weakref.WeakSet[Any] = weakref.WeakSet()
# The configured model and provider names: the only values those labels take besides the fixed
# ones. Grows only with configs (every Gateway in this process adds its own).
_models: set[str] = set()
_providers: set[str] = set()


def allow_label_values(models: Iterable[str] = (), providers: Iterable[str] = ()) -> None:
    """Register configured model and provider names as label values (the gateway, at start)."""
    _models.update(models)
    _providers.update(providers)


def endpoint_label(record: RequestRecord) -> str:
    if record.mode == PASSTHROUGH:
        return PASSTHROUGH
    return record.endpoint if record.endpoint in ENDPOINTS else OTHER


def model_label(name: str) -> str:
    if not name:
        return "none"
    if name in _models:
        return name
    bare = name.rpartition("#")[0]  # `name#provider`: the model is the part before the last #
    return bare if bare in _models else OTHER


def provider_label(name: str, mode: str = "routed") -> str:
    if mode == PASSTHROUGH:
        return PASSTHROUGH
    if not name:
        return "none"
    return name if name in _providers else OTHER


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
                # The worker answering /metrics sets it from the cooldown table all workers
                # share, just before rendering: the value written last is the true one.
                multiprocess_mode="livemostrecent",
            ),
            degraded_keys=Gauge(
                "apex_keys_degraded",
                "API keys out for a while after repeated 5xx or timeouts (state degraded).",
                ["provider"],
                multiprocess_mode="livemostrecent",  # set from the shared table, as cooldown
            ),
            degraded_endpoints=Gauge(
                "apex_endpoints_degraded",
                "Provider endpoints tried after the healthy ones after repeated 5xx or timeouts.",
                ["provider"],
                multiprocess_mode="livemostrecent",
            ),
            dropped=Counter(
                "apex_records_dropped_total", "Request records lost before a sink.", ["stage"]
            ),
            pool=Gauge(
                "apex_pool_keys",
                "Key × model pairs of the key pool, by state (ok, rate_limited, …).",
                ["provider", "state"],
                multiprocess_mode="livemostrecent",  # set from the ledger before rendering
            ),
            pool_fallbacks=Gauge(
                "apex_pool_state_fallbacks",
                "Key-pool ledger calls served from local state because Redis failed.",
                multiprocess_mode="livesum",
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
    observe_batch((record,))


def observe_batch(records: Iterable[RequestRecord]) -> None:
    """Update every metric from finished requests; counters are summed before they are touched."""
    m = _get()
    requests: dict[tuple[str, str, str, int], int] = {}
    tokens: dict[tuple[str, str, str], int] = {}
    attempts: dict[tuple[str, str], int] = {}
    failovers: dict[str, int] = {}
    for record in records:
        endpoint = endpoint_label(record)
        model = model_label(record.mapped_model)
        provider = provider_label(record.provider, record.mode)
        key = (endpoint, model, provider, record.status)
        requests[key] = requests.get(key, 0) + 1
        if record.duration_ms is not None:
            _child(m.duration, "duration", endpoint, model).observe(record.duration_ms / 1000)
        if record.stream and record.ttft_ms is not None:
            _child(m.ttft, "ttft", model, provider).observe(record.ttft_ms / 1000)
        for kind, count in (
            ("prompt", record.prompt_tokens),
            ("completion", record.completion_tokens),
            ("cached", record.cached_tokens),
            ("reasoning", record.reasoning_tokens),
        ):
            if count:
                tokens[(model, provider, kind)] = tokens.get((model, provider, kind), 0) + count
        for attempt in record.attempts:
            outcome = (provider_label(attempt.provider, record.mode), attempt_outcome(attempt))
            attempts[outcome] = attempts.get(outcome, 0) + 1
        if len(record.attempts) > 1:
            failovers[model] = failovers.get(model, 0) + len(record.attempts) - 1
    for (endpoint, model, provider, status), count in requests.items():
        _child(m.requests, "requests", endpoint, model, provider, str(status)).inc(count)
    for labels, count in tokens.items():
        _child(m.tokens, "tokens", *labels).inc(count)
    for labels, count in attempts.items():
        _child(m.attempts, "attempts", *labels).inc(count)
    for model, count in failovers.items():
        _child(m.failovers, "failovers", model).inc(count)


def _child(metric: Any, name: str, *labels: str) -> Any:
    cache = _children.get(name)
    if cache is None:
        cache = _children[name] = {}
    child = cache.get(labels)
    if child is None:
        child = cache[labels] = metric.labels(*labels)
    return child


def observe_before_render(source: Any) -> None:
    """`source.observe_pending()` runs before every `render_metrics()` while `source` lives."""
    _pending_sources.add(source)


def set_keys_in_cooldown(provider: str, count: int) -> None:
    """The core calls this when the number of cooling-down keys of `provider` changes (a
    configured provider: the caller's names are not clients' strings)."""
    _child(_get().cooldown, "cooldown", provider).set(count)


def set_degraded(provider: str, keys: int, endpoints: int) -> None:
    """Keys and endpoints of `provider` (a configured name) degraded by repeated faults."""
    m = _get()
    _child(m.degraded_keys, "degraded_keys", provider).set(keys)
    _child(m.degraded_endpoints, "degraded_endpoints", provider).set(endpoints)


def set_pool_keys(provider: str, state: str, count: int) -> None:
    """Key × model pairs of `provider` (a configured name) in `state` (keypool.KeyState)."""
    _child(_get().pool, "pool", provider, state).set(count)


def set_pool_fallbacks(count: int) -> None:
    _get().pool_fallbacks.set(count)


def count_dropped(stage: str, count: int = 1) -> None:
    _child(_get().dropped, "dropped", stage).inc(count)


def render_metrics() -> tuple[bytes, str]:
    """(body, content type) for `GET /metrics`, aggregated over all workers in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _get()  # every series is listed, even before the first request
    for source in list(_pending_sources):
        source.observe_pending()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
