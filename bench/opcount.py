"""Where a request's time goes, counted instead of timed: bytecodes per request, by function.

    python -m bench.opcount off 500            # gateway token, no limits (chat_c50's gateway)
    python -m bench.opcount local 500          # limits on every key, local state (chat_c50_pool)
    python -m bench.opcount local3 500         # ... three keys per provider to choose from
    python -m bench.opcount off3 500           # three keys per provider, no limits
    python -m bench.opcount redis 500          # ... Redis state (chat_c50_pool_redis)
    python -m bench.opcount vkey 500           # a virtual key, limits on Redis (chat_c50_vkey)
    python -m bench.opcount diff A.tsv B.tsv 500   # per request: what B runs that A does not

The gateway runs the scenario's config against the bench's nginx upstream with a tracer that
counts every bytecode it executes (switched on after a warm-up, by signal); five client threads
send N chat requests. The counts hardly move between runs, where `make bench` on a shared VM
moves by 10-20 %, so a change of a few dozen bytecodes per request shows. It is a finder, not a
measure: a bytecode is not a fixed time (calls and allocations cost more than loads), and every
performance claim still comes from `make bench`. On the VM of bench/results a request of
chat_c50 runs ~4,400 bytecodes at ~35 ns each.
"""

from __future__ import annotations

import collections
import http.client
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import fixtures
from bench import gateway as bench_gateway
from bench.tools import find_tool
from bench.upstream import NginxUpstream

MODES = ("off", "off3", "local", "local3", "redis", "vkey")
CLIENTS = 5
WARMUP = 300


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    if argv[:1] == ["diff"] and len(argv) == 4:
        print(diff(Path(argv[1]), Path(argv[2]), int(argv[3])))
        return 0
    if not argv or argv[0] not in MODES:
        print(__doc__)
        return 2
    requests = int(argv[1]) if len(argv) > 1 else 500
    out = count(argv[0], requests)
    total = sum(read_counts(out).values())
    print(f"{argv[0]}: {total / requests:,.0f} bytecodes/request -> {out}")
    return 0


def count(mode: str, requests: int) -> Path:
    """Run the scenario's gateway under the tracer; the counts of `requests` requests (a TSV:
    bytecodes, function, where), divided by nothing."""
    nginx = find_tool("nginx")
    if nginx is None:
        raise SystemExit("nginx not found: `make bench` installs it")
    work = Path(tempfile.mkdtemp(prefix="apex-opcount-"))
    upstream = NginxUpstream(nginx, work, _free_port())
    upstream.start()
    pool = {"local": "local", "local3": "local", "redis": "redis"}.get(mode)
    keys_db = work / "keys.db" if mode == "vkey" else None
    keys = 3 if mode.endswith("3") else 1
    config = bench_gateway.write_config(
        work / "apex.json", upstream.base, upstream.base, None, pool, keys_db, keys
    )
    port = _free_port()
    out = work / f"opcount-{mode}.tsv"
    cmd = [sys.executable, "-m", "bench.opcount", "--child", str(out), "serve"]
    cmd += ["--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with open(work / "gateway.log", "wb") as log:
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        token = fixtures.VIRTUAL_KEY if mode == "vkey" else fixtures.GATEWAY_TOKEN
        _wait_ready(port, child)
        _send(port, token, WARMUP)
        child.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        _send(port, token, requests)
        child.send_signal(signal.SIGUSR2)
        for _ in range(100):
            if out.exists():
                break
            time.sleep(0.05)
    finally:
        child.terminate()
        child.wait(30)
        upstream.stop()
    return out


def read_counts(path: Path) -> dict[str, int]:
    """ "function (file:line)" → bytecodes, from a count's TSV."""
    rows = {}
    for line in path.read_text().splitlines():
        number, where, name = line.split("\t")
        rows[f"{name} ({where})"] = int(number)
    return rows


def diff(before: Path, after: Path, requests: int, threshold: float = 1.0) -> str:
    """Per request (both counts of `requests` requests): the bytecodes `after` runs and `before`
    does not, by function, largest first."""
    a, b = read_counts(before), read_counts(after)
    total_a, total_b = sum(a.values()) / requests, sum(b.values()) / requests
    lines = [f"total {total_a:,.0f} -> {total_b:,.0f} ({total_b - total_a:+,.0f}) per request"]
    rows = sorted(
        (((b.get(k, 0) - a.get(k, 0)) / requests, k) for k in a.keys() | b.keys()),
        reverse=True,
    )
    lines += [f"{change:+8.0f}  {name}" for change, name in rows if abs(change) >= threshold]
    return "\n".join(lines)


# --- the gateway side -------------------------------------------------------------------------


def _child(argv: list[str]) -> int:
    """The gateway's process: `serve` with a tracer counting bytecodes per function while on
    (SIGUSR1 on, SIGUSR2 off and write the counts)."""
    out = Path(argv[0])
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    on = False

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202 - sys.settrace's signature
        if not on:
            return None
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = (code.co_qualname, f"{code.co_filename}:{code.co_firstlineno}")

        def each(frame, event, arg):  # noqa: ANN001, ANN202
            if event == "opcode":
                counts[key] += 1
            return each

        return each

    def start(*_: object) -> None:
        nonlocal on
        counts.clear()
        on = True

    def stop(*_: object) -> None:
        nonlocal on
        on = False
        lines = [f"{n}\t{_short(where)}\t{name}" for (name, where), n in counts.most_common()]
        out.write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.settrace(tracer)
    from apex_ai_proxy.cli import main as gateway_main

    sys.argv = ["apex-ai-proxy", *argv[1:]]
    return gateway_main()


def _short(where: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where


# --- the client side --------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, child: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the gateway exited with {child.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway was not ready in time")


def _send(port: int, token: str, requests: int) -> None:
    """`requests` chat requests from CLIENTS keep-alive connections; every answer a 200."""
    body = fixtures.openai_request("bench-model", False)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    failed: list[int] = []

    def client(count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            conn.request("POST", "/v1/chat/completions", body, headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                failed.append(answer.status)

    share = [requests // CLIENTS + (i < requests % CLIENTS) for i in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise SystemExit(f"{len(failed)} requests failed: {sorted(set(failed))}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
