"""The benchmark machinery still runs end to end: a tiny load, one second, a handful of streams.

Numbers do not belong in tests (see DESIGN.md); this only checks that `python -m bench.run`
starts its upstreams and the gateway, drives them, and writes well-formed results with no errors
(once per scenario, and in two `--repeat` rounds).
Skipped where nginx and wrk are missing and cannot be installed (no root or no apt-get).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS_MISSING = 2  # exit code of bench.run when nginx/wrk cannot be installed


def run_bench(tmp_path: Path, *args: str) -> dict:
    output = tmp_path / "results.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.run",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--output",
        str(output),
        *args,
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    if done.returncode == TOOLS_MISSING:
        pytest.skip(f"benchmark tools unavailable: {done.stderr.strip()}")
    assert done.returncode == 0, f"bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (tmp_path / "stdout.txt").write_text(done.stdout)
    return json.loads(output.read_text())


def assert_wrk_result(result: dict) -> None:
    assert result["requests"] > 0
    assert result["requests_per_s"] > 0
    assert result["errors_total"] == 0, result["errors"]
    assert set(result["latency_ms"]) >= {"p50", "p99"}


def assert_slow_result(result: dict, streams: int) -> None:
    assert "error" not in result, result.get("error")
    assert result["streams"] == streams
    assert result["all_completed"], result["failures"]
    assert set(result["added_gap_ms"]) >= {"p50", "p99"}


def test_bench_runs_end_to_end_through_the_gateway(tmp_path: Path) -> None:
    results = run_bench(
        tmp_path,
        "--scenarios",
        "chat_c1,slow_streams",
        "--slow-streams",
        "20",
        "--slow-seconds",
        "1",
    )

    chat = results["scenarios"]["chat_c1"]
    assert_wrk_result(chat["direct"])
    assert "error" not in chat["gateway"], chat["gateway"].get("error")
    assert_wrk_result(chat["gateway"])
    assert chat["gateway"]["extra"]["check"] == "ok"
    assert set(chat["added_latency_ms"]) >= {"p50", "p99"}

    slow = results["scenarios"]["slow_streams"]
    assert_slow_result(slow["direct"], 20)
    assert_slow_result(slow["gateway"], 20)

    assert results["startup"]["idle_rss_mb"] > 0
    statuses = {t["target"]: t["status"] for t in results["targets"]}
    assert set(statuses.values()) <= {"PASS", "MISS", "n/a"}
    assert statuses["idle RSS"] in {"PASS", "MISS"}


def test_bench_direct_only_measures_the_upstream(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--direct-only", "--scenarios", "stream_c1")

    stream = results["scenarios"]["stream_c1"]
    assert_wrk_result(stream["direct"])
    assert "gateway" not in stream


def test_bench_repeat_runs_interleaved_rounds_and_reports_medians(tmp_path: Path) -> None:
    results = run_bench(
        tmp_path, "--repeat", "2", "--side-by-side", "0", "--scenarios", "chat_c50,chat_c50_records"
    )

    assert results["meta"]["repeat"] == 2
    # compared with each other, so back to back, and the first of them swaps every round
    assert results["meta"]["order_per_round"] == [
        ["chat_c50", "chat_c50_records"],
        ["chat_c50_records", "chat_c50"],
    ]
    for name in ("chat_c50", "chat_c50_records"):
        entry = results["scenarios"][name]
        assert [run["round"] for run in entry["runs"]] == [1, 2]
        for run in entry["runs"]:
            assert_wrk_result(run["gateway"])
        assert_wrk_result(entry["gateway"])
        spread = entry["spread"]["requests_per_s"]
        assert spread["min"] <= entry["gateway"]["requests_per_s"] <= spread["max"]

    loss = results["comparisons"]["records_loss"]
    assert [r["round"] for r in loss["per_round"]] == [1, 2]
    records = next(t for t in results["targets"] if t["target"].startswith("records on"))
    assert records["value"] == loss["median"]
    assert records["note"] == "median of 2 paired rounds"


def test_bench_measures_a_features_cost_side_by_side(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--side-by-side", "2", "--scenarios", "chat_c50,chat_c50_records")

    loss = results["comparisons"]["records_loss"]
    assert "both under load at once" in loss["what"]
    assert [r["round"] for r in loss["per_round"]] == [1, 2]
    for r in loss["per_round"]:  # both gateways served in every round
        assert r["chat_c50"] > 0 and r["chat_c50_records"] > 0
    assert [r["round"] for r in loss["back_to_back"]["per_round"]] == [1]
    records = next(t for t in results["targets"] if t["target"].startswith("records on"))
    assert records["value"] == loss["median"]
    assert records["note"] == "side by side, median of 2"


def test_bench_gives_every_provider_the_asked_number_of_keys(tmp_path: Path) -> None:
    """`--upstream-keys 3`: the pool chooses among three keys per provider, and serves."""
    results = run_bench(
        tmp_path, "--upstream-keys", "3", "--keep-workdir", "--scenarios", "chat_c50_pool"
    )

    assert results["meta"]["upstream_keys"] == 3
    pool = results["scenarios"]["chat_c50_pool"]["gateway"]
    assert "error" not in pool, pool.get("error")
    assert_wrk_result(pool)
    assert pool["extra"]["check"] == "ok"
    kept = Path((tmp_path / "stdout.txt").read_text().split("workdir kept: ", 1)[1].split()[0])
    try:
        configs = sorted(kept.glob("gateway-*.yaml"))
        assert configs, f"no gateway config in {kept}"
        for config in configs:
            providers = yaml.safe_load(config.read_text())["providers"]
            assert {len(p["api_keys"]) for p in providers.values()} == {3}
            assert all(p.get("limits") for p in providers.values())
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_bench_refuses_a_number_of_keys_out_of_range() -> None:
    for keys in ("0", "101"):
        done = subprocess.run(
            [sys.executable, "-m", "bench.run", "--upstream-keys", keys, "--direct-only"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "--upstream-keys 1 to 100" in done.stderr, done.stderr
