"""`make bench` / `python -m bench.run`: the upstream directly, then through the gateway.

Examples:
  python -m bench.run                                   # everything, 10 s per run
  python -m bench.run --scenarios chat_c50,chat_c1 --duration 5
  python -m bench.run --repeat 5 --scenarios chat_c50,chat_c50_records   # medians of 5 rounds
  python -m bench.run --scenarios chat_c50,chat_c50_pool --side-by-side 5  # a feature's cost
  python -m bench.run --direct-only                     # measure only the fake upstream
  python -m bench.run --scenarios chat_c50,stream_c50,baselines   # our HTTP layer vs libraries
  BENCH_GATEWAY_CMD="python -m other_gateway --config {config} --port {port}" python -m bench.run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import checks, fixtures, report, slowload, stacks, tools
from bench.gateway import (
    REDIS_URL,
    Gateway,
    GatewayError,
    RssSampler,
    default_command,
    hwm_mb,
    process_tree,
    rss_mb,
    write_config,
)
from bench.profile import Profiler
from bench.repeat import combine_results, median, paired, pick, round_order, spread
from bench.scenarios import ALL_SCENARIOS, SLOW_SCENARIO, WRK_SCENARIOS, WrkScenario, evaluate
from bench.sidebyside import side_by_side
from bench.upstream import NginxUpstream
from bench.wrk import WrkResult, run_wrk

RESULTS = Path(__file__).parent / "results" / "latest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenarios",
        default=os.environ.get("BENCH_SCENARIOS", "all"),
        help=f"comma list of: {', '.join(ALL_SCENARIOS)} (default all)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("BENCH_DURATION", 10)),
        help="seconds per wrk run (default 10)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=float(os.environ.get("BENCH_WARMUP", 2)),
        help="seconds of unmeasured load before each gateway run (default 2)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=int(os.environ.get("BENCH_REPEAT", 1)),
        help="rounds of the wrk scenarios, interleaved; the report shows medians (default 1)",
    )
    p.add_argument(
        "--side-by-side",
        type=int,
        default=int(os.environ.get("BENCH_SIDE_BY_SIDE", 3)),
        help="rounds of each paired comparison (pool, virtual key, records vs chat_c50) with "
        "both gateways under load at once: the losses the targets use (default 3; 0: off, "
        "the targets then use the back-to-back rounds)",
    )
    p.add_argument(
        "--gateway-cmd",
        default=os.environ.get("BENCH_GATEWAY_CMD") or default_command(),
        help="command template with {config} {host} {port} {workers} {python}",
    )
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 1)))
    p.add_argument(
        "--upstream-keys",
        type=int,
        default=1,
        help="keys per provider in every gateway config (default 1); e.g. 3 to see what the "
        "key pool's choice among keys costs (the upstream takes any key)",
    )
    p.add_argument(
        "--gateway-cpus",
        default=os.environ.get("BENCH_GATEWAY_CPUS"),
        help="CPUs for the gateway, e.g. 0 or 0,1 (default: the first)",
    )
    p.add_argument(
        "--direct-only", action="store_true", help="measure only the upstream, no gateway"
    )
    p.add_argument(
        "--baselines",
        default=os.environ.get("BENCH_BASELINES", stacks.DEFAULT),
        help=f"minimal proxies run by the '{stacks.SCENARIO}' scenario, comma list of: "
        f"{', '.join(stacks.STACKS)} (default {stacks.DEFAULT})",
    )
    p.add_argument(
        "--slow-streams", type=int, default=int(os.environ.get("BENCH_SLOW_STREAMS", 2000))
    )
    p.add_argument(
        "--slow-seconds", type=float, default=float(os.environ.get("BENCH_SLOW_SECONDS", 10))
    )
    p.add_argument("--slow-interval-ms", type=float, default=50.0)
    p.add_argument(
        "--slow-ramp-s",
        type=float,
        default=float(os.environ.get("BENCH_SLOW_RAMP_S", 1.0)),
        help="seconds over which the slow streams are opened (default 1)",
    )
    p.add_argument(
        "--slow-repeat",
        type=int,
        default=int(os.environ.get("BENCH_SLOW_REPEAT", 1)),
        help="runs of slow_streams (about 25 s each), one per round; --repeat leaves it at 1",
    )
    p.add_argument(
        "--label",
        default=os.environ.get("BENCH_LABEL", ""),
        help="name stored in the results (e.g. the library compared)",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    p.add_argument(
        "--profile",
        action="store_true",
        default=bool(os.environ.get("BENCH_PROFILE")),
        help="sample the gateway with py-spy during each measured run (needs py-spy)",
    )
    p.add_argument(
        "--keep-workdir", action="store_true", help="keep configs and logs in the temp dir"
    )
    args = p.parse_args(argv)
    names = (
        ALL_SCENARIOS
        if args.scenarios == "all"
        else [s.strip() for s in args.scenarios.split(",") if s.strip()]
    )
    unknown = sorted(set(names) - set(ALL_SCENARIOS))
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ALL_SCENARIOS)}")
    args.selected = names
    try:
        args.stacks = stacks.parse(args.baselines) if stacks.SCENARIO in names else []
    except ValueError as exc:
        p.error(str(exc))
    if args.repeat < 1 or args.slow_repeat < 1 or not 1 <= args.upstream_keys <= 100:
        p.error("--repeat and --slow-repeat must be at least 1, --upstream-keys 1 to 100")
    return args


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process tree."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
        except OSError:
            continue
    return user / ticks, system / ticks


class CpuMeter:
    """Gateway CPU time used inside a `with` block: user, system, total."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> CpuMeter:
        self.before = cpu_times(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        after = cpu_times(self.pid)
        self.user = after[0] - self.before[0]
        self.system = after[1] - self.before[1]
        self.total = self.user + self.system

    def report(self, units: int, per: str) -> dict:
        return {
            "gateway_cpu_s": round(self.total, 2),
            "gateway_cpu_system_share": round(self.system / self.total, 2) if self.total else None,
            f"cpu_us_per_{per}": round(self.total / units * 1e6, 1) if units else None,
        }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.log = lambda msg: print(msg, flush=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="apex-bench-"))
        self.startups: list[float] = []
        self.starts = 0  # gateway and baseline processes started: names their config files
        self.idle_rss_mb: float | None = None
        self.results: dict = {"scenarios": {}}

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        self.log(f"open files limit: {tools.raise_open_files_limit()}")
        self.paths = tools.ensure_tools(self.log)
        self.plan = tools.plan_cpus(self.args.gateway_cpus)
        tools.pin_self_to_load_side(self.plan)
        self.log(f"pinning: {self.plan.describe()}")
        if {"chat_c50_pool_redis", "chat_c50_vkey"} & set(self.args.selected):
            self.log("pinning: " + tools.pin_redis_to_load_side(self.plan, REDIS_URL))
        self.nginx = NginxUpstream(self.paths["nginx"], self.workdir, tools.free_port())
        self.nginx.start()
        self.log(f"fake upstream: nginx on {self.nginx.base} (verified POST answers)")
        self.slow_port = tools.free_port()
        self.gateway_env = dict(kv.split("=", 1) for kv in self.args.gateway_env)
        self.results["meta"] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "label": self.args.label,
            "gateway_cmd": self.args.gateway_cmd,
            "gateway_env": self.gateway_env,
            "workers": self.args.workers,
            "upstream_keys": self.args.upstream_keys,
            "cpu_plan": self.plan.describe(),
            "cpus": os.cpu_count(),
            "duration_s": self.args.duration,
            "warmup_s": self.args.warmup,
            "repeat": self.args.repeat,
            "slow_repeat": self.args.slow_repeat,
            "python": sys.version.split()[0],
            "tools": tools.versions(self.paths),
            "git_commit": _git_commit(),
            "load_average_before": tools.load_average(),
        }
        busy = self.results["meta"]["load_average_before"]
        if busy > 0.5:
            self.log(
                f"WARNING: load average {busy} before starting: other work will skew the numbers"
            )

    def teardown(self) -> None:
        self.nginx.stop()
        if self.args.keep_workdir:
            self.log(f"workdir kept: {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- gateway -----------------------------------------------------------------------------

    def start_gateway(
        self,
        records: bool,
        command: str | None = None,
        pool: str | None = None,
        virtual_key: bool = False,
    ) -> Gateway:
        """The gateway, or with `command` a baseline proxy (its start is not the gateway's)."""
        self.starts += 1
        db = self.workdir / f"records-{self.starts}.db" if records else None
        keys_db = self.workdir / f"keys-{self.starts}.db" if virtual_key else None
        config = write_config(
            self.workdir / f"gateway-{self.starts}.yaml",
            self.nginx.base,
            f"http://127.0.0.1:{self.slow_port}",
            db,
            pool,
            keys_db,
            self.args.upstream_keys,
        )
        gw = Gateway(
            command or self.args.gateway_cmd,
            config,
            tools.free_port(),
            self.workdir,
            self.plan.gateway_prefix(),
            self.args.workers,
            self.gateway_env,
        )
        ready = gw.start()
        if command is not None:
            return gw
        self.startups.append(ready)
        if self.idle_rss_mb is None:
            time.sleep(0.5)
            self.idle_rss_mb = round(rss_mb(gw.pid), 1)
            self.log(
                f"gateway ready after {ready:.3f} s, idle RSS {self.idle_rss_mb} MB: {' '.join(gw.argv)}"
            )
        return gw

    # --- wrk scenarios -------------------------------------------------------------------------

    def wrk(self, url: str, s: WrkScenario, duration: float) -> WrkResult:
        return run_wrk(
            self.paths["wrk"], url, s.body, s.headers, s.connections, duration, self.workdir
        )

    def run_direct(self, scenarios: list[WrkScenario]) -> dict[tuple[str, int], dict]:
        """One direct run per upstream path and connection count (scenarios share them)."""
        done: dict[tuple[str, int], dict] = {}
        for s in scenarios:
            if s.direct_key not in done:
                self.log(
                    f"direct   {s.upstream_path} c={s.connections} for {self.args.duration:g} s"
                )
                done[s.direct_key] = self.wrk(
                    self.nginx.base + s.upstream_path, s, self.args.duration
                ).to_dict()
        return done

    def run_gateway(self, s: WrkScenario, direct: dict, stack: stacks.Stack | None = None) -> dict:
        """One measured gateway run: {"gateway": ..., "added_latency_ms": ...} (vs `direct`).

        With `stack`, the same run on that minimal proxy instead (not profiled)."""
        who = f"baseline {stack.name}" if stack else "gateway "
        self.log(f"{who} {s.name}: {s.title} for {self.args.duration:g} s")
        try:
            gw = self.start_gateway(
                s.records, stack.command if stack else None, s.pool, s.virtual_key
            )
        except GatewayError as exc:
            self.log(f"  gateway did not start: {exc}")
            return {"gateway": {"error": str(exc)}}
        try:
            check = checks.check(gw.base, s)
            if self.args.warmup > 0:
                self.wrk(gw.base + s.gateway_path, s, self.args.warmup)
            profiler = None if stack else self.profiler(gw, s.name)
            with RssSampler(gw.pid) as sampler, CpuMeter(gw.pid) as cpu:
                result = self.wrk(gw.base + s.gateway_path, s, self.args.duration)
            result.extra = {
                "check": check,
                **cpu.report(result.requests, "request"),
                "peak_rss_mb": round(max(sampler.peak_mb, hwm_mb(gw.pid)), 1),
            }
            if check != "ok":
                result.errors["check"] = 1
                result.errors_total += 1
                self.log(f"  response check failed: {check}")
            if result.errors_total:
                result.extra["gateway_log_tail"] = gw.log_tail(1500)
            if profiler:
                result.extra["profile"] = profiler.finish()
            base = direct["latency_ms"]
            return {
                "gateway": result.to_dict(),
                "added_latency_ms": {
                    q: round(result.latency_ms[q] - base[q], 3) for q in ("p50", "p90", "p99")
                },
            }
        finally:
            gw.stop()

    def run_side_by_side(self, by_name: dict[str, WrkScenario]) -> None:
        """Each paired comparison whose two scenarios ran, measured with both at once: what
        the targets use; the back-to-back rounds stay under `back_to_back`."""
        comparisons = self.results["comparisons"]
        for scenario, (base, name) in PAIRED.items():
            if base not in by_name or scenario not in by_name:
                continue
            measured = side_by_side(
                self,
                by_name[base],
                by_name[scenario],
                self.args.side_by_side,
                self.args.duration,
                self.log,
            )
            if comparisons.get(name):
                measured["back_to_back"] = comparisons[name]
            comparisons[name] = measured

    def profiler(self, gw: Gateway, name: str) -> Profiler | None:
        if not self.args.profile:
            return None
        output = self.args.output.parent / f"profile-{name}.txt"
        output.parent.mkdir(parents=True, exist_ok=True)
        return Profiler(gw.pid, output, self.args.duration)

    # --- minimal proxies on each HTTP stack (bench/stacks.py) ----------------------------------

    def baseline_scenarios(self) -> list[WrkScenario]:
        if not self.args.stacks:
            return []
        return [s for s in WRK_SCENARIOS if s.name in stacks.MEASURED_ON]

    def run_baselines(
        self,
        index: int,
        directs: dict[tuple[str, int], dict],
        baselines: list[stacks.Stack],
        stack_runs: dict[str, dict[str, list[dict]]],
    ) -> None:
        """One round: every stack on every scenario, after the gateway's runs of that round."""
        for stack in stacks.round_order(baselines, index):
            for s in self.baseline_scenarios():
                run = {"round": index + 1, "direct": directs[s.direct_key]}
                run.update(self.run_gateway(s, run["direct"], stack))
                stack_runs[stack.name][s.name].append(run)

    # --- slow streams --------------------------------------------------------------------------

    def run_slow(self) -> dict:
        """The load side alone, then through the gateway: {"direct": ..., "gateway": ...}."""
        args = self.args
        binary = slowload.build(self.workdir)
        tokens = round(args.slow_seconds * 1000 / args.slow_interval_ms)

        def load(connect_port: int, model: str) -> dict:
            return slowload.run(
                binary,
                self.workdir,
                self.slow_port,
                connect_port,
                model,
                args.slow_streams,
                tokens,
                args.slow_interval_ms,
                args.slow_ramp_s,
            )

        self.log(
            f"direct   {args.slow_streams} slow streams, {tokens} tokens every "
            f"{args.slow_interval_ms:g} ms (slowload: C upstream + client on the load CPU)"
        )
        run = {"direct": load(self.slow_port, fixtures.UPSTREAM_MODEL)}
        if args.direct_only:
            return run
        self.log(f"gateway  {args.slow_streams} slow streams")
        try:
            gw = self.start_gateway(records=False)
        except GatewayError as exc:
            run["gateway"] = {"error": str(exc)}
            return run
        try:
            profiler = self.profiler(gw, SLOW_SCENARIO)
            with RssSampler(gw.pid) as sampler, CpuMeter(gw.pid) as cpu:
                result = load(gw.port, "bench-slow")
            relayed = result.get("gaps_measured", 0) + result.get("completed", 0)
            result.update(cpu.report(relayed, "token"))
            result["peak_rss_mb"] = round(max(sampler.peak_mb, hwm_mb(gw.pid)), 1)
            if not result.get("all_completed"):
                result["gateway_log_tail"] = gw.log_tail(1500)
            if profiler:
                result["profile"] = profiler.finish()
            run["gateway"] = result
            return run
        finally:
            gw.stop()

    # --- whole run -----------------------------------------------------------------------------

    def run(self) -> dict:
        args = self.args
        wrk_scenarios = [s for s in WRK_SCENARIOS if s.name in args.selected]
        by_name = {s.name: s for s in wrk_scenarios}
        slow = SLOW_SCENARIO in args.selected
        rounds = max(args.repeat, args.slow_repeat if slow else 1)
        runs: dict[str, list[dict]] = {s.name: [] for s in wrk_scenarios}
        for s in wrk_scenarios:  # the table's row order, whatever order they run in
            self.results["scenarios"][s.name] = {"title": s.title, "connections": s.connections}
        if slow:
            runs[SLOW_SCENARIO] = []
            self.results["scenarios"][SLOW_SCENARIO] = {
                "title": f"{args.slow_streams} concurrent slow streams"
            }
        if slow and args.repeat > 1 and args.slow_repeat == 1:
            self.log("slow_streams: one run (about 25 s); --slow-repeat N runs it in N rounds")
        load_averages, orders = [], []
        baselines = [] if args.direct_only else stacks.usable(args.stacks, self.log)
        stack_runs: dict[str, dict[str, list[dict]]] = {
            stack.name: {name: [] for name in stacks.MEASURED_ON} for stack in baselines
        }
        measured = wrk_scenarios + ([] if args.direct_only else self.baseline_scenarios())
        for index in range(rounds):
            if rounds > 1:
                load_averages.append(tools.load_average())
                self.log(f"--- round {index + 1}/{rounds} (load average {load_averages[-1]})")
            if index < args.repeat and measured:
                directs = self.run_direct(measured)
                orders.append(round_order([s.name for s in wrk_scenarios], index))
                for name in orders[-1]:
                    s = by_name[name]
                    run = {"round": index + 1, "direct": directs[s.direct_key]}
                    if not args.direct_only:
                        run.update(self.run_gateway(s, run["direct"]))
                    runs[name].append(run)
                self.run_baselines(index, directs, baselines, stack_runs)
            if slow and index < args.slow_repeat:
                runs[SLOW_SCENARIO].append({"round": index + 1, **self.run_slow()})
        for name, scenario_runs in runs.items():
            self.results["scenarios"][name].update(summarize(scenario_runs))
        self.results["comparisons"] = compare(runs)
        if args.side_by_side > 0 and not args.direct_only:
            self.run_side_by_side(by_name)
        if stacks.SCENARIO in args.selected and not args.direct_only:
            self.results["baselines"] = stacks.section(args.stacks, stack_runs, summarize)
        if rounds > 1:
            self.results["meta"]["load_average_per_round"] = load_averages
            self.results["meta"]["order_per_round"] = orders
        if self.startups:
            self.results["startup"] = {
                "ready_s": [round(s, 3) for s in self.startups],
                "ready_s_median": round(statistics.median(self.startups), 3),
                "ready_s_max": round(max(self.startups), 3),
                "idle_rss_mb": self.idle_rss_mb,
            }
        self.results["targets"] = evaluate(self.results)
        return self.results


def summarize(runs: list[dict]) -> dict:
    """A scenario's entry: one run as it is; several: medians, spread, and every run's numbers."""
    if len(runs) == 1:
        return {k: v for k, v in runs[0].items() if k != "round"}
    entry: dict = {}
    for side in ("direct", "gateway", "added_latency_ms"):
        combined = combine_results([run.get(side) for run in runs])
        if combined is not None:
            entry[side] = combined
    entry["spread"] = {
        field: spread(pick(run.get("gateway"), *path) for run in runs)
        for field, path in SPREAD_FIELDS.items()
        if any(pick(run.get("gateway"), *path) is not None for run in runs)
    }
    entry["runs"] = runs
    return entry


# Fields whose min and max over the runs are kept next to the medians.
SPREAD_FIELDS = {
    "requests_per_s": ("requests_per_s",),
    "p99_ms": ("latency_ms", "p99"),
    "cpu_us_per_request": ("extra", "cpu_us_per_request"),
    "added_gap_p99_ms": ("added_gap_ms", "p99"),
    "cpu_us_per_token": ("cpu_us_per_token",),
}


def records_loss(off: dict, on: dict) -> float | None:
    """Throughput lost by turning a feature on (records, the key pool): 1 - on/off, from two
    runs of the same round."""
    off_rps = pick(off.get("gateway"), "requests_per_s")
    on_rps = pick(on.get("gateway"), "requests_per_s")
    return round(1 - on_rps / off_rps, 3) if on_rps and off_rps else None


# Paired comparisons (runs of one round): the scenario, what it is compared with, and the name
# its loss is reported under. Issue 13 measures Redis state against local state.
PAIRED = {
    "chat_c50_records": ("chat_c50", "records_loss"),
    "chat_c50_pool": ("chat_c50", "pool_loss"),
    "chat_c50_pool_redis": ("chat_c50_pool", "pool_redis_loss"),
    "chat_c50_vkey": ("chat_c50", "vkey_loss"),
}


def compare(runs: dict[str, list[dict]]) -> dict:
    """Paired comparisons: the value per round (both runs back to back), and their median."""
    out = {}
    for scenario, (base, name) in PAIRED.items():
        if base not in runs or scenario not in runs:
            continue
        per_round = paired(runs[base], runs[scenario], records_loss)
        if per_round:
            out[name] = {
                "what": f"1 - {scenario} req/s / {base} req/s, per round",
                "per_round": per_round,
                "median": median([r["value"] for r in per_round]),
            }
    return out


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        bench.setup()
        results = bench.run()
    except tools.ToolsMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        if hasattr(bench, "nginx"):
            bench.teardown()
    print()
    print(report.render(results))
    report.write(results, args.output)
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
