"""What the benchmark measures, and the targets (one core, one worker) each result is held to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import fixtures, stacks
from bench.upstream import CHAT_PATH, STREAM_PATH

OPENAI_HEADERS = {
    "Content-Type": "application/json",
    "Authorization": f"Bearer {fixtures.GATEWAY_TOKEN}",
}
ANTHROPIC_HEADERS = {
    "Content-Type": "application/json",
    "x-api-key": fixtures.GATEWAY_TOKEN,
    "anthropic-version": "2023-06-01",
}


@dataclass(frozen=True)
class WrkScenario:
    """One wrk run through the gateway, compared with the same load sent to the upstream directly."""

    name: str
    title: str
    gateway_path: str
    body: bytes
    headers: dict[str, str]
    connections: int
    upstream_path: str  # the direct baseline: same load straight at nginx
    stream: bool
    dialect: str = "openai"
    records: bool = False
    pool: str | None = None  # the key pool's state: None (off), "local" or "redis"
    virtual_key: bool = False  # authenticate with a virtual key (limits on Redis) instead

    @property
    def direct_key(self) -> tuple[str, int]:
        return (self.upstream_path, self.connections)


def _openai(
    name: str,
    title: str,
    stream: bool,
    connections: int,
    records: bool = False,
    pool: str | None = None,
) -> WrkScenario:
    model = "bench-stream" if stream else "bench-model"
    return WrkScenario(
        name=name,
        title=title,
        gateway_path="/v1/chat/completions",
        body=fixtures.openai_request(model, stream),
        headers=OPENAI_HEADERS,
        connections=connections,
        upstream_path=STREAM_PATH if stream else CHAT_PATH,
        stream=stream,
        records=records,
        pool=pool,
    )


WRK_SCENARIOS = [
    _openai("chat_c50", "chat, non-streaming, c=50", False, 50),
    _openai("chat_c1", "chat, non-streaming, c=1", False, 1),
    _openai("stream_c50", "chat, streaming, c=50", True, 50),
    _openai("stream_c1", "chat, streaming, c=1", True, 1),
    WrkScenario(
        name="anthropic_stream_c50",
        title="Anthropic client -> OpenAI upstream, streaming, c=50",
        gateway_path="/v1/messages",
        body=fixtures.anthropic_request("bench-stream", True),
        headers=ANTHROPIC_HEADERS,
        connections=50,
        upstream_path=STREAM_PATH,
        stream=True,
        dialect="anthropic",
    ),
    _openai(
        "chat_c50_records",
        "chat, non-streaming, c=50, records on (SQLite)",
        False,
        50,
        records=True,
    ),
    # issue 13: the key pool on every request (limits configured, never reached)
    _openai(
        "chat_c50_pool",
        "chat, non-streaming, c=50, key pool on (local state)",
        False,
        50,
        pool="local",
    ),
    _openai(
        "chat_c50_pool_redis",
        "chat, non-streaming, c=50, key pool on (Redis state, one round trip)",
        False,
        50,
        pool="redis",
    ),
    WrkScenario(
        name="chat_c50_vkey",
        title="chat, non-streaming, c=50, a virtual key with RPM/TPM limits (Redis state)",
        gateway_path="/v1/chat/completions",
        body=fixtures.openai_request("bench-model", False),
        headers={**OPENAI_HEADERS, "Authorization": f"Bearer {fixtures.VIRTUAL_KEY}"},
        connections=50,
        upstream_path=CHAT_PATH,
        stream=False,
        virtual_key=True,
    ),
]
SLOW_SCENARIO = "slow_streams"
# `baselines`: the minimal proxies of bench/stacks.py on chat_c50 and stream_c50
ALL_SCENARIOS = [s.name for s in WRK_SCENARIOS] + [SLOW_SCENARIO, stacks.SCENARIO]


# --- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    value: Callable[[dict], float | bool | None]  # from the results; None = not measured
    passes: Callable[[float | bool], bool]
    unit: str = ""
    note: Callable[[dict], str | None] = lambda results: None  # how the value was computed


def _get(results: dict, *path: str) -> object:
    node: object = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _gw(name: str, *path: str) -> Callable[[dict], object]:
    return lambda r: _get(r, "scenarios", name, "gateway", *path)


def _records_ratio(results: dict) -> float | None:
    """The median of the per-round losses (chat_c50 and chat_c50_records run back to back)."""
    return _get(results, "comparisons", "records_loss", "median")


def _vkey_ratio(results: dict) -> float | None:
    return _get(results, "comparisons", "vkey_loss", "median")


def _records_note(results: dict) -> str | None:
    return _how("records_loss")(results)


def _how(name: str) -> Callable[[dict], str | None]:
    """How a loss was measured: side by side (bench/sidebyside.py) or in back-to-back rounds."""

    def note(results: dict) -> str | None:
        comparison = _get(results, "comparisons", name) or {}
        rounds = len(comparison.get("per_round") or [])
        if "both under load at once" in comparison.get("what", ""):
            return f"side by side, median of {rounds}"
        return f"median of {rounds} paired rounds" if rounds > 1 else None

    return note


def _loss(name: str) -> Callable[[dict], float | None]:
    return lambda results: _get(results, "comparisons", name, "median")


TARGETS = [
    Target(
        "chat c=50 throughput",
        ">= 5000 req/s",
        _gw("chat_c50", "requests_per_s"),
        lambda v: v >= 5000,
        "req/s",
    ),
    Target(
        "chat c=50 p99 latency",
        "<= 25 ms",
        _gw("chat_c50", "latency_ms", "p99"),
        lambda v: v <= 25,
        "ms",
    ),
    Target("chat c=50 errors", "0", _gw("chat_c50", "errors_total"), lambda v: v == 0),
    Target(
        "stream c=50 throughput",
        ">= 4000 req/s",
        _gw("stream_c50", "requests_per_s"),
        lambda v: v >= 4000,
        "req/s",
    ),
    Target("stream c=50 errors", "0", _gw("stream_c50", "errors_total"), lambda v: v == 0),
    Target(
        "anthropic->openai stream c=50",
        ">= 2000 req/s",
        _gw("anthropic_stream_c50", "requests_per_s"),
        lambda v: v >= 2000,
        "req/s",
    ),
    Target(
        "added latency c=1 p50",
        "<= 0.4 ms",
        lambda r: _get(r, "scenarios", "chat_c1", "added_latency_ms", "p50"),
        lambda v: v <= 0.4,
        "ms",
    ),
    Target(
        "added latency c=1 p99",
        "<= 1.5 ms",
        lambda r: _get(r, "scenarios", "chat_c1", "added_latency_ms", "p99"),
        lambda v: v <= 1.5,
        "ms",
    ),
    Target(
        "slow streams all complete",
        "all",
        lambda r: _get(r, "scenarios", SLOW_SCENARIO, "gateway", "all_completed"),
        lambda v: v is True,
    ),
    Target(
        "slow streams added gap p99",
        "<= 5 ms",
        lambda r: _get(r, "scenarios", SLOW_SCENARIO, "gateway", "added_gap_ms", "p99"),
        lambda v: v <= 5,
        "ms",
    ),
    Target(
        "slow streams gateway peak RSS",
        "<= 300 MB",
        lambda r: _get(r, "scenarios", SLOW_SCENARIO, "gateway", "peak_rss_mb"),
        lambda v: v <= 300,
        "MB",
    ),
    Target(
        "idle RSS", "<= 80 MB", lambda r: _get(r, "startup", "idle_rss_mb"), lambda v: v <= 80, "MB"
    ),
    Target(
        "ready after start",
        "<= 1.5 s",
        lambda r: _get(r, "startup", "ready_s_median"),
        lambda v: v <= 1.5,
        "s",
    ),
    *(
        Target(
            f"own HTTP layer vs fastest library, {name}",
            f">= {stacks.RULE}x",
            lambda r, name=name: stacks.ratio_of(r, name),
            lambda v: v >= stacks.RULE,
            "x",
        )
        for name in stacks.MEASURED_ON
    ),
    Target(
        "records on: throughput loss",
        "<= 10%",
        _records_ratio,
        lambda v: v <= 0.10,
        "fraction",
        _records_note,
    ),
    # issue 13: the key pool's check-and-reserve on every request, vs the pool off
    Target(
        "key pool on, local: throughput loss",
        "<= 5%",
        _loss("pool_loss"),
        lambda v: v <= 0.05,
        "fraction",
        _how("pool_loss"),
    ),
    Target(
        "key pool, Redis vs local state: loss",
        "<= 15%",
        _loss("pool_redis_loss"),
        lambda v: v <= 0.15,
        "fraction",
        _how("pool_redis_loss"),
    ),
    Target(  # issue 16: key check + limits with Redis within 15 % of gateway-token auth
        "virtual key + Redis limits: throughput loss",
        "<= 15%",
        _vkey_ratio,
        lambda v: v <= 0.15,
        "fraction",
        _how("vkey_loss"),
    ),
]


def evaluate(results: dict) -> list[dict]:
    rows = []
    for target in TARGETS:
        value = target.value(results)
        status = "n/a" if value is None else ("PASS" if target.passes(value) else "MISS")
        row = {
            "target": target.name,
            "wanted": target.wanted,
            "value": value,
            "unit": target.unit,
            "status": status,
        }
        note = target.note(results)
        if note:
            row["note"] = note
        rows.append(row)
    return rows
