"""`make bench` / `python -m bench.run`: the upstream directly, then through the gateway.

Examples:
  python -m bench.run                                   # everything, 10 s per run
  python -m bench.run --scenarios chat_c50,chat_c1 --duration 5
  python -m bench.run --direct-only                     # measure only the fake upstream
  BENCH_GATEWAY_CMD="python -m other_gateway --config {config} --port {port}" python -m bench.run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import checks, report, tools
from bench.gateway import (
    Gateway,
    GatewayError,
    RssSampler,
    default_command,
    hwm_mb,
    process_tree,
    rss_mb,
    write_config,
)
from bench.scenarios import ALL_SCENARIOS, SLOW_SCENARIO, WRK_SCENARIOS, WrkScenario, evaluate
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
        "--gateway-cpus",
        default=os.environ.get("BENCH_GATEWAY_CPUS"),
        help="CPUs for the gateway, e.g. 0 or 0,1 (default: the first)",
    )
    p.add_argument(
        "--direct-only", action="store_true", help="measure only the upstream, no gateway"
    )
    p.add_argument(
        "--slow-streams", type=int, default=int(os.environ.get("BENCH_SLOW_STREAMS", 2000))
    )
    p.add_argument(
        "--slow-seconds", type=float, default=float(os.environ.get("BENCH_SLOW_SECONDS", 10))
    )
    p.add_argument("--slow-interval-ms", type=float, default=50.0)
    p.add_argument(
        "--label",
        default=os.environ.get("BENCH_LABEL", ""),
        help="name stored in the results (e.g. the library compared)",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
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
    return args


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / ticks


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.log = lambda msg: print(msg, flush=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="apex-bench-"))
        self.slow_process: subprocess.Popen | None = None
        self.startups: list[float] = []
        self.idle_rss_mb: float | None = None
        self.results: dict = {"scenarios": {}}

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        self.log(f"open files limit: {tools.raise_open_files_limit()}")
        self.paths = tools.ensure_tools(self.log)
        self.plan = tools.plan_cpus(self.args.gateway_cpus)
        tools.pin_self_to_load_side(self.plan)
        self.log(f"pinning: {self.plan.describe()}")
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
            "cpu_plan": self.plan.describe(),
            "cpus": os.cpu_count(),
            "duration_s": self.args.duration,
            "warmup_s": self.args.warmup,
            "python": sys.version.split()[0],
            "tools": tools.versions(self.paths),
            "git_commit": _git_commit(),
        }

    def teardown(self) -> None:
        self.nginx.stop()
        if self.slow_process and self.slow_process.poll() is None:
            self.slow_process.terminate()
            self.slow_process.wait(5)
        if self.args.keep_workdir:
            self.log(f"workdir kept: {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- gateway -----------------------------------------------------------------------------

    def start_gateway(self, records: bool) -> Gateway:
        db = self.workdir / f"records-{len(self.startups)}.db" if records else None
        config = write_config(
            self.workdir / f"gateway-{len(self.startups)}.yaml",
            self.nginx.base,
            f"http://127.0.0.1:{self.slow_port}",
            db,
        )
        gw = Gateway(
            self.args.gateway_cmd,
            config,
            tools.free_port(),
            self.workdir,
            self.plan.gateway_prefix(),
            self.args.workers,
            self.gateway_env,
        )
        ready = gw.start()
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

    def run_direct(self, scenarios: list[WrkScenario]) -> None:
        done: dict[tuple[str, int], WrkResult] = {}
        for s in scenarios:
            if s.direct_key not in done:
                self.log(
                    f"direct   {s.upstream_path} c={s.connections} for {self.args.duration:g} s"
                )
                done[s.direct_key] = self.wrk(
                    self.nginx.base + s.upstream_path, s, self.args.duration
                )
            self.results["scenarios"][s.name] = {
                "title": s.title,
                "connections": s.connections,
                "direct": done[s.direct_key].to_dict(),
            }

    def run_gateway(self, s: WrkScenario) -> None:
        entry = self.results["scenarios"][s.name]
        self.log(f"gateway  {s.name}: {s.title} for {self.args.duration:g} s")
        try:
            gw = self.start_gateway(s.records)
        except GatewayError as exc:
            entry["gateway"] = {"error": str(exc)}
            self.log(f"  gateway did not start: {exc}")
            return
        try:
            check = checks.check(gw.base, s)
            if self.args.warmup > 0:
                self.wrk(gw.base + s.gateway_path, s, self.args.warmup)
            cpu_before = cpu_seconds(gw.pid)
            with RssSampler(gw.pid) as sampler:
                result = self.wrk(gw.base + s.gateway_path, s, self.args.duration)
            cpu = cpu_seconds(gw.pid) - cpu_before
            result.extra = {
                "check": check,
                "gateway_cpu_s": round(cpu, 2),
                "cpu_us_per_request": round(cpu / result.requests * 1e6, 1)
                if result.requests
                else None,
                "peak_rss_mb": round(max(sampler.peak_mb, hwm_mb(gw.pid)), 1),
            }
            if check != "ok":
                result.errors["check"] = 1
                result.errors_total += 1
                self.log(f"  response check failed: {check}")
            if result.errors_total:
                result.extra["gateway_log_tail"] = gw.log_tail(1500)
            entry["gateway"] = result.to_dict()
            direct = entry["direct"]["latency_ms"]
            entry["added_latency_ms"] = {
                q: round(result.latency_ms[q] - direct[q], 3) for q in ("p50", "p90", "p99")
            }
        finally:
            gw.stop()

    # --- slow streams --------------------------------------------------------------------------

    def start_slow_upstream(self) -> None:
        tokens = round(self.args.slow_seconds * 1000 / self.args.slow_interval_ms)
        cmd = [
            sys.executable,
            "-m",
            "bench.slow_upstream",
            "--port",
            str(self.slow_port),
            "--interval-ms",
            str(self.args.slow_interval_ms),
            "--tokens",
            str(tokens),
        ]
        self.slow_process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent
        )
        assert self.slow_process.stdout is not None
        self.slow_process.stdout.readline()  # "slow upstream on ..." once it listens
        self.log(
            f"slow upstream: python on 127.0.0.1:{self.slow_port}, {tokens} tokens every {self.args.slow_interval_ms:g} ms"
        )

    def slow_client(self, url: str, model: str) -> dict:
        tokens = round(self.args.slow_seconds * 1000 / self.args.slow_interval_ms)
        cmd = [
            sys.executable,
            "-m",
            "bench.slow_client",
            "--url",
            url,
            "--model",
            model,
            "--streams",
            str(self.args.slow_streams),
            "--tokens",
            str(tokens),
            "--interval-ms",
            str(self.args.slow_interval_ms),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        if done.returncode != 0:
            return {"error": f"slow client failed: {done.stderr.strip()[-500:]}"}
        return json.loads(done.stdout.strip().splitlines()[-1])

    def run_slow(self) -> None:
        entry = self.results["scenarios"].setdefault(
            SLOW_SCENARIO, {"title": f"{self.args.slow_streams} concurrent slow streams"}
        )
        self.start_slow_upstream()
        upstream_cpu = cpu_seconds(self.slow_process.pid)
        self.log(f"direct   {self.args.slow_streams} slow streams for {self.args.slow_seconds:g} s")
        entry["direct"] = self.slow_client(
            f"http://127.0.0.1:{self.slow_port}/v1/chat/completions", "upstream-model"
        )
        entry["direct"]["upstream_cpu_s"] = round(
            cpu_seconds(self.slow_process.pid) - upstream_cpu, 2
        )
        if self.args.direct_only:
            return
        self.log(f"gateway  {self.args.slow_streams} slow streams for {self.args.slow_seconds:g} s")
        try:
            gw = self.start_gateway(records=False)
        except GatewayError as exc:
            entry["gateway"] = {"error": str(exc)}
            return
        try:
            cpu_before = cpu_seconds(gw.pid)
            with RssSampler(gw.pid) as sampler:
                result = self.slow_client(gw.base + "/v1/chat/completions", "bench-slow")
            cpu = cpu_seconds(gw.pid) - cpu_before
            tokens = result.get("gaps_measured", 0) + result.get("completed", 0)
            result["gateway_cpu_s"] = round(cpu, 2)
            result["cpu_us_per_token"] = round(cpu / tokens * 1e6, 1) if tokens else None
            result["peak_rss_mb"] = round(max(sampler.peak_mb, hwm_mb(gw.pid)), 1)
            entry["gateway"] = result
        finally:
            gw.stop()

    # --- whole run -----------------------------------------------------------------------------

    def run(self) -> dict:
        wrk_scenarios = [s for s in WRK_SCENARIOS if s.name in self.args.selected]
        self.run_direct(wrk_scenarios)
        if not self.args.direct_only:
            for s in wrk_scenarios:
                self.run_gateway(s)
        if SLOW_SCENARIO in self.args.selected:
            self.run_slow()
        if self.startups:
            self.results["startup"] = {
                "ready_s": [round(s, 3) for s in self.startups],
                "ready_s_median": round(statistics.median(self.startups), 3),
                "ready_s_max": round(max(self.startups), 3),
                "idle_rss_mb": self.idle_rss_mb,
            }
        self.results["targets"] = evaluate(self.results)
        return self.results


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
