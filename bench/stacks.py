"""Issue 11's rule for keeping our own HTTP layer: minimal proxies on each stack, in the same run.

The gateway's own server + client exist for speed only. Each stack below runs the same minimal
proxy (bench/baselines/): route the model, rewrite it, forward the body, relay the answer whole
or chunk by chunk. They are started like the gateway (same config, same `taskset` pin, fresh
process per run, the same answer check and warm-up) on chat c=50 and stream c=50. Our layer is
kept only if its proxy is at least 25 % faster than the fastest library one on both.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from bench.repeat import median, paired, pick

SCENARIO = "baselines"  # the --scenarios name that turns these runs on
MEASURED_ON = ("chat_c50", "stream_c50")
RULE = 1.25  # own req/s over the fastest library's, on every scenario of MEASURED_ON


@dataclass(frozen=True)
class Stack:
    name: str
    title: str
    needs: tuple[str, ...]  # modules to import; the `bench` extra installs the third-party ones
    own: bool = False

    @property
    def command(self) -> str:
        return f"{{python}} -m bench.baselines.{self.name} --config {{config}} --host {{host}} --port {{port}}"

    def missing(self) -> list[str]:
        return [module for module in self.needs if importlib.util.find_spec(module) is None]


STACKS = {
    s.name: s
    for s in (
        Stack("own_stack", "our HttpServer + HttpClient", ("httptools", "uvloop"), own=True),
        Stack("granian_pyreqwest", "granian (RSGI) + pyreqwest", ("granian", "pyreqwest")),
        Stack("uvicorn_aiohttp", "uvicorn (uvloop, httptools) + aiohttp", ("uvicorn", "aiohttp")),
        # Not in the rule (issue 11 names three); kept selectable: how the HTTP layer was chosen.
        Stack("aiohttp_proxy", "aiohttp server + client", ("aiohttp",)),
    )
}
DEFAULT = "own_stack,granian_pyreqwest,uvicorn_aiohttp"


def parse(names: str) -> list[Stack]:
    """The stacks named in a comma list; ValueError names the unknown ones."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in STACKS]
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(STACKS)}")
    return [STACKS[n] for n in wanted]


def usable(selected: list[Stack], log: Callable[[str], None]) -> list[Stack]:
    """The selected stacks that can run here; the others are logged (and reported skipped)."""
    ready = []
    for stack in selected:
        missing = stack.missing()
        if missing:
            log(f"baseline {stack.name} skipped: {', '.join(missing)} not installed")
        else:
            ready.append(stack)
    return ready


def section(
    selected: list[Stack],
    runs: dict[str, dict[str, list[dict]]],
    summarize: Callable[[list[dict]], dict],
) -> dict:
    """The results' `baselines` entry: each stack's scenarios (summarized) and the comparison."""
    out: dict = {"stacks": {}, "rule": f"own / fastest library >= {RULE}"}
    for stack in selected:
        entry: dict = {"title": stack.title, "command": stack.command, "scenarios": {}}
        missing = stack.missing()
        if missing:
            entry["skipped"] = f"not installed: {', '.join(missing)} (pip install -e '.[bench]')"
        for name, scenario_runs in runs.get(stack.name, {}).items():
            entry["scenarios"][name] = summarize(scenario_runs) if scenario_runs else {}
        out["stacks"][stack.name] = entry
    out["comparison"] = compare(runs)
    return out


def round_order(stacks: list[Stack], round_index: int) -> list[Stack]:
    """Rotated by one each round, so no stack always runs first (or right after the gateway)."""
    if not stacks:
        return []
    shift = round_index % len(stacks)
    return stacks[shift:] + stacks[:shift]


def _rps(run: dict | None) -> float | None:
    """A run's req/s, or None when it failed or had errors (a wrong answer is not a speed)."""
    gateway = (run or {}).get("gateway")
    if not gateway or "error" in gateway or gateway.get("errors_total"):
        return None
    return gateway.get("requests_per_s")


def _cpu(run: dict | None) -> float | None:
    """A run's CPU us per request (process tree), None where _rps is None."""
    return pick(run, "gateway", "extra", "cpu_us_per_request") if _rps(run) else None


def _ratio(library_run: dict, own_run: dict) -> float | None:
    own, library = _rps(own_run), _rps(library_run)
    return round(own / library, 3) if own and library else None


def compare(runs: dict[str, dict[str, list[dict]]]) -> dict:
    """Per scenario: own stack vs the fastest library stack (by median req/s), paired by round.

    `runs[stack][scenario]` holds that stack's runs. The ratio is the median of the per-round
    ratios (both runs in the same round), as the records loss is: it cancels slow phases."""
    own = next((name for name in runs if STACKS[name].own), None)
    libraries = [name for name in runs if not STACKS[name].own]
    out: dict = {}
    for scenario in MEASURED_ON:
        medians = {
            name: median([r for r in map(_rps, runs[name].get(scenario, [])) if r is not None])
            for name in runs
        }
        ranked = sorted(
            (name for name in libraries if medians[name]), key=lambda n: medians[n], reverse=True
        )
        row: dict = {"req_per_s": medians, "fastest_library": ranked[0] if ranked else None}
        if own and ranked and runs[own].get(scenario):
            per_round = paired(runs[ranked[0]][scenario], runs[own][scenario], _ratio)
            row["per_round"] = per_round
            row["ratio"] = median([r["value"] for r in per_round])
        row.update(_cpu_comparison(runs, scenario, own, libraries))
        out[scenario] = row
    ratios = [(out[s].get("ratio")) for s in MEASURED_ON]
    if all(r is not None for r in ratios):
        out["decision"] = "keep" if all(r >= RULE for r in ratios) else "move"
    return out


def _cpu_comparison(
    runs: dict[str, dict[str, list[dict]]], scenario: str, own: str | None, libraries: list[str]
) -> dict:
    """The same question asked of CPU time: the cheapest library's us/req over ours (median).

    Not the rule, a cross-check: on a busy machine req/s follows the share of the contended CPU
    each process gets (more threads, more share), CPU per request much less."""
    cpu = {
        name: median([c for c in map(_cpu, runs[name].get(scenario, [])) if c is not None])
        for name in runs
    }
    cheapest = min((n for n in libraries if cpu[n]), key=lambda n: cpu[n], default=None)
    own_cpu = cpu.get(own) if own else None
    ratio = round(cpu[cheapest] / own_cpu, 3) if cheapest and own_cpu else None
    return {"cpu_us_per_request": cpu, "cheapest_library_by_cpu": cheapest, "cpu_ratio": ratio}


def ratio_of(results: dict, scenario: str) -> float | None:
    return pick(results, "baselines", "comparison", scenario, "ratio")


def table(results: dict, render) -> list[str]:
    """The comparison table (req/s) and the decision line; `render` is report.table."""
    section = results.get("baselines")
    if not section:
        return []
    names = list(section["stacks"])
    comparison = section.get("comparison") or {}
    rows = []
    for scenario in MEASURED_ON:
        row = comparison.get(scenario) or {}
        rates = row.get("req_per_s") or {}
        ratio = row.get("ratio")
        rule = "n/a" if ratio is None else ("PASS" if ratio >= RULE else "MISS")
        gateway = pick(results, "scenarios", scenario, "gateway", "requests_per_s")
        rows.append(
            [scenario, gateway, *(rates.get(n) for n in names)]
            + [row.get("fastest_library"), ratio, rule]
        )
        cpu = row.get("cpu_us_per_request") or {}
        rows.append(
            [
                "  CPU us/req",
                pick(results, "scenarios", scenario, "gateway", "extra", "cpu_us_per_request"),
                *(cpu.get(n) for n in names),
                row.get("cheapest_library_by_cpu"),
                row.get("cpu_ratio"),
                "(check)",
            ]
        )
    headers = ["req/s", "full gateway", *names, "fastest library", "own/fastest", "rule >= 1.25"]
    lines = [
        "",
        "own HTTP layer vs libraries: minimal proxies, same run, pinned like the gateway "
        "(a run with errors or a failed answer check counts as no number)",
        "CPU rows: us/req of each process tree, the cheapest library by it, and its us/req over "
        "ours: a cross-check that a busy machine skews less than req/s",
        render(headers, rows),
    ]
    for name in names:
        stack = section["stacks"][name]
        problems = [
            f"{scenario}: {_problem(entry)}"
            for scenario, entry in stack["scenarios"].items()
            if _problem(entry)
        ]
        if stack.get("skipped"):
            problems = [stack["skipped"]]
        if problems:
            lines.append(f"{name}: " + "; ".join(problems))
    decision = comparison.get("decision")
    if decision:
        lines.append(
            "decision (issue 11): "
            + (
                "keep our own HTTP layer (>= 25 % faster than the fastest library on both)"
                if decision == "keep"
                else "move onto the fastest library stack (our layer is not >= 25 % faster on both)"
            )
        )
    return lines


def _problem(entry: dict) -> str | None:
    gateway = entry.get("gateway") or {}
    if "error" in gateway:
        return gateway["error"][:120]
    check = (gateway.get("extra") or {}).get("check")
    if check and check != "ok":
        return f"answer check: {check[:120]}"
    if gateway.get("errors_total"):
        return f"{gateway['errors_total']} errors"
    return None
