"""Many concurrent slow streams: build and run `slowload.c` (slow upstream + stream client).

Why C: at 2,000 streams x one token per 50 ms the load side sends and receives 40,000 tokens a
second. A Python (uvloop) upstream and client measured here needed about 1.4 CPUs between them,
so on a 2-CPU machine the load side itself added tens of ms to every gap. The C version spends
about 1 s of user time per 400,000 tokens; what is left is the kernel's loopback TCP cost.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import subprocess
from pathlib import Path

from bench import fixtures

SOURCE = Path(__file__).with_name("slowload.c")


def build(workdir: Path) -> Path:
    """Compile slowload.c with the system C compiler (a fraction of a second)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) found: install gcc")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = workdir / f"slowload-{digest}"
    if not binary.exists():
        done = subprocess.run(
            [compiler, "-O2", "-o", str(binary), str(SOURCE)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"building slowload failed:\n{done.stderr[-2000:]}")
    return binary


def write_fixture(path: Path, connect_port: int, model: str) -> Path:
    """Request, token prefix, token suffix and stream tail, separated by NUL bytes."""
    body = fixtures.openai_request(model, stream=True)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{connect_port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {fixtures.GATEWAY_TOKEN}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    marker = 1234567890123
    prefix, suffix = fixtures.slow_token_event(marker).split(b"%d" % marker)
    parts = [request, prefix, suffix, fixtures.slow_stream_tail()]
    assert not any(b"\0" in part for part in parts)
    path.write_bytes(b"\0".join(parts))
    return path


def run(
    binary: Path,
    workdir: Path,
    listen_port: int,
    connect_port: int,
    model: str,
    streams: int,
    tokens: int,
    interval_ms: float,
    ramp_s: float = 1.0,
) -> dict:
    """Serve the slow upstream on `listen_port`, open `streams` streams to `connect_port`."""
    fixture = write_fixture(workdir / f"slowload-{connect_port}.bin", connect_port, model)
    cmd = [
        str(binary),
        *("--listen", str(listen_port), "--connect", str(connect_port), "--fixture", str(fixture)),
        *("--streams", str(streams), "--tokens", str(tokens), "--interval-ms", str(interval_ms)),
        *("--ramp-s", str(ramp_s)),
    ]
    timeout = ramp_s + tokens * interval_ms / 1000 * 2 + 60
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(lines) < 2:
        return {"error": f"slowload failed ({done.returncode}): {done.stderr.strip()[-500:]}"}
    result = json.loads(lines[-1])
    # The load program's own CPU per token: per token it sends once (as the upstream) and
    # receives once (as the client), the same two socket operations the gateway pays per
    # relayed token. Its cost is a floor for what a relay can spend per token on this machine.
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tokens = result.get("gaps_measured", 0) + result.get("completed", 0)
    if tokens:
        result["load_cpu_us_per_token"] = round(cpu_s * 1e6 / tokens, 1)
    return result
