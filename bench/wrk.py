"""Drive wrk: a generated Lua script POSTs one body; its done() hook prints the results as JSON.

wrk's own text output rounds latencies to 10 µs and prints them in mixed units; the Lua hook
gives exact microsecond percentiles and the error counters, which we parse instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARKER = "BENCH_RESULT "

DONE_HOOK = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    "BENCH_RESULT ", summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
"""


@dataclass
class WrkResult:
    connections: int
    requests: int
    duration_s: float
    requests_per_s: float
    errors: dict[str, int]
    errors_total: int
    latency_ms: dict[str, float]
    bytes: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def lua_script(body: bytes, headers: dict[str, str]) -> str:
    text = body.decode()
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError("body contains the Lua long-bracket terminator")
    lines = ['wrk.method = "POST"', f"wrk.body = [{level}[{text}]{level}]"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n" + DONE_HOOK


def run_wrk(
    wrk: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    workdir: Path,
    threads: int = 1,
    timeout_s: float = 10.0,
) -> WrkResult:
    script = workdir / f"wrk-{abs(hash((url, body, tuple(headers.items()))))}.lua"
    script.write_text(lua_script(body, headers))
    cmd = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={round(timeout_s)}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    if done.returncode != 0:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout[-500:]}"
        )
    return parse_output(done.stdout, connections)


def parse_output(stdout: str, connections: int) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{stdout[-1000:]}")
    raw = json.loads(line[len(MARKER) :])
    duration_s = raw["duration_us"] / 1e6
    errors = raw["errors"]
    # wrk's status counter only counts >= 400; its text output has the same number as "Non-2xx".
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if non2xx:
        errors["status"] = max(errors["status"], int(non2xx.group(1)))
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        requests_per_s=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        errors=errors,
        errors_total=sum(errors.values()),
        latency_ms={k: round(v / 1000, 3) for k, v in raw["latency_us"].items()},
        bytes=raw["bytes"],
    )
