"""Issue 11's rule for keeping our own HTTP layer: minimal proxies on each stack, in the same run.

The gateway's own server + client exist for speed only. Each stack below runs the same minimal
proxy (bench/baselines/): route the model, rewrite it, forward the body, relay the answer whole
or chunk by chunk. They are started like the gateway (same config, same `taskset` pin, fresh
process per run, the same answer check and warm-up) on chat c=50 and stream c=50. Our layer is
kept only if its proxy is at least 25 % faster than the fastest library one on both.
"""

from __future__ import annotations

import importlib.util
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
        out[scenario] = row
    ratios = [(out[s].get("ratio")) for s in MEASURED_ON]
    if all(r is not None for r in ratios):
        out["decision"] = "keep" if all(r >= RULE for r in ratios) else "move"
    return out


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
        cpu = ("extra", "cpu_us_per_request")
        rows.append(
            ["  CPU us/req", pick(results, "scenarios", scenario, "gateway", *cpu)]
            + [pick(section["stacks"][n], "scenarios", scenario, "gateway", *cpu) for n in names]
            + [None, None, None]
        )
    headers = ["req/s", "full gateway", *names, "fastest library", "own/fastest", "rule >= 1.25"]
    lines = [
        "",
        "own HTTP layer vs libraries: minimal proxies, same run, pinned like the gateway "
        "(errors or a failed answer check leave a stack's number out; CPU us/req is the "
        "process tree's, the number to trust when the machine is busy)",
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
