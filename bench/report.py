"""Print the comparison tables and write the results JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import stacks


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(share: float | None) -> str | None:
    return None if share is None else f"{share:.0%}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _range(span: dict | None, digits: int = 0) -> str | None:
    if not span:
        return None
    return f"{_fmt(float(span['min']), digits)}-{_fmt(float(span['max']), digits)}"


def wrk_table(results: dict) -> str:
    rows = []
    repeated = _repeat(results) > 1
    for name, scenario in results["scenarios"].items():
        if "connections" not in scenario:
            continue
        direct, gw = scenario.get("direct") or {}, scenario.get("gateway") or {}
        added = scenario.get("added_latency_ms") or {}
        extra = gw.get("extra", {})
        spread = (scenario.get("spread") or {}).get("requests_per_s")
        rows.append(
            [
                name,
                direct.get("requests_per_s"),
                gw.get("requests_per_s", gw.get("error", "-")[:40] if gw else None),
                *([_range(spread)] if repeated else []),
                (gw.get("latency_ms") or {}).get("p50"),
                (gw.get("latency_ms") or {}).get("p99"),
                added.get("p50"),
                added.get("p99"),
                gw.get("errors_total"),
                extra.get("cpu_us_per_request"),
                _pct(extra.get("gateway_cpu_system_share")),
                extra.get("peak_rss_mb"),
            ]
        )
    headers = [
        "scenario",
        "direct r/s",
        "gateway r/s",
        *(["gw r/s min-max"] if repeated else []),
        "p50 ms",
        "p99 ms",
        "+p50 ms",
        "+p99 ms",
        "errors",
        "gw CPU us/req",
        "kernel",
        "peak RSS MB",
    ]
    return table(headers, rows)


def slow_table(results: dict) -> str | None:
    slow = results["scenarios"].get("slow_streams")
    if not slow:
        return None
    rows = []
    for side in ("direct", "gateway"):
        r = slow.get(side)
        if not r:
            continue
        if "error" in r:
            rows.append([side, r["error"][:60]] + [None] * 10)
            continue
        gap, delay, ttft = r.get("added_gap_ms", {}), r.get("delay_ms", {}), r.get("ttft_ms", {})
        rows.append(
            [
                side,
                f"{r['completed']}/{r['streams']}",
                gap.get("p50"),
                gap.get("p99"),
                gap.get("max"),
                delay.get("p99"),
                ttft.get("p99"),
                r.get("wall_s"),
                r.get("cpu_us_per_token"),
                _pct(r.get("gateway_cpu_system_share")),
                r.get("peak_rss_mb"),
                r.get("load_cpu_us_per_token"),
            ]
        )
    headers = [
        "slow streams",
        "completed",
        "+gap p50",
        "+gap p99",
        "+gap max",
        "delay p99",
        "TTFT p99",
        "wall s",
        "gw CPU us/token",
        "kernel",
        "peak RSS MB",
        "load CPU us/token",
    ]
    return table(headers, rows)


def targets_table(results: dict) -> str:
    rows = [
        [t["target"] + (f" ({t['note']})" if t.get("note") else ""), t["wanted"], t["value"]]
        + [t["status"]]
        for t in results["targets"]
    ]
    return table(["target (one core, one worker)", "wanted", "measured", "result"], rows)


def _repeat(results: dict) -> int:
    return results["meta"].get("repeat", 1)


def repeat_lines(results: dict) -> list[str]:
    """Under the wrk table: each paired comparison, round by round (side by side or back to
    back, as its `what` says)."""
    lines = []
    for name, loss in (results.get("comparisons") or {}).items():
        if not loss or not loss.get("per_round"):
            continue
        rounds = ", ".join(f"{r['value']:+.1%}" for r in loss["per_round"])
        lines.append(f"{name} ({loss['what']}): {rounds}; median {loss['median']:+.1%}")
    return lines


def slow_spread_line(results: dict) -> list[str]:
    slow = results["scenarios"].get("slow_streams") or {}
    spread = slow.get("spread") or {}
    if not spread:
        return []
    gap, cpu = spread.get("added_gap_p99_ms"), spread.get("cpu_us_per_token")
    return [
        f"slow streams: medians of {len(slow.get('runs', []))} runs; gateway +gap p99 "
        f"{_range(gap, 2) or '-'} ms, CPU {_range(cpu, 1) or '-'} us/token (min-max)"
    ]


def profiles(results: dict) -> list[str]:
    out = []
    for name, scenario in results["scenarios"].items():
        gw = scenario.get("gateway") or {}
        profile = gw.get("profile") or (gw.get("extra") or {}).get("profile")
        if not profile or not profile.get("samples"):
            continue
        out += ["", f"profile {name} ({profile['samples']} samples, py-spy): self time"]
        out += [f"  {pct:5.1f}%  {frame}" for frame, pct in profile["self_pct"]]
        out += ["  gateway functions, inclusive:"]
        out += [f"  {pct:5.1f}%  {frame}" for frame, pct in profile["gateway_inclusive_pct"]]
    return out


def render(results: dict) -> str:
    meta = results["meta"]
    parts = [
        f"Apex AI Proxy benchmark - {meta['started']} - {meta['cpu_plan']}",
        f"gateway: {meta['gateway_cmd']}",
        f"duration {meta['duration_s']} s per run; latencies from wrk (ms); +p50/+p99 = gateway - direct; "
        "kernel = share of the gateway's CPU time spent in the kernel",
    ]
    if _repeat(results) > 1:
        parts.append(
            f"{meta['repeat']} interleaved rounds: each number is the median of the wrk scenario's "
            f"{meta['repeat']} runs (errors: their sum; peak RSS: their max); +p50/+p99 = median of "
            "the per-round (gateway - direct); gw r/s min-max = the runs' spread"
        )
    if meta.get("load_average_before", 0) > 0.5:
        parts.append(
            f"WARNING: load average was {meta['load_average_before']} before the run: "
            "other work on this machine skews these numbers"
        )
    if any("connections" in s for s in results["scenarios"].values()):
        parts += ["", wrk_table(results), *repeat_lines(results)]
    parts += stacks.table(results, table)
    slow = slow_table(results)
    if slow:
        parts += [
            "",
            slow,
            "(+gap = inter-token gap - interval; delay = upstream send -> client receive;"
            " load CPU = slowload's own CPU per token: one send + one recv, as the gateway pays)",
            *slow_spread_line(results),
        ]
        for side in ("direct", "gateway"):
            r = results["scenarios"]["slow_streams"].get(side) or {}
            if r.get("failures"):
                sample = r.get("failure_sample") or "-"
                parts.append(f"{side} failures: {r['failures']}; first: {sample}")
    startup = results.get("startup") or {}
    if startup:
        parts += [
            "",
            f"startup: ready after {_fmt(startup.get('ready_s_median'), 3)} s median "
            f"(max {_fmt(startup.get('ready_s_max'), 3)} s over {len(startup.get('ready_s', []))} starts), "
            f"idle RSS {_fmt(startup.get('idle_rss_mb'), 1)} MB",
        ]
    parts += ["", targets_table(results)]
    parts += profiles(results)
    return "\n".join(parts)


def write(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
