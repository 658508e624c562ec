"""`serve --workers 2` as a real subprocess: a 429 with Retry-After seen by one worker keeps
every worker off that key (the cooldown table is shared), so the rate-limited upstream is hit
once, not once per worker.

Each request goes on a new TCP connection, so SO_REUSEPORT spreads them over both workers; the
test finds out which worker accepted each connection (Linux /proc: the socket's inode among the
worker's file descriptors) and insists that both served some.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from cli_run import BIN, cli_env, wait_ready, write
from fakes.openai_upstream import rate_limited
from fakes.ports import free_port
from gateway_config import config, model, openai_provider

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to tell the workers apart"
)

REQUESTS = 20


def _tcp_sockets() -> list[tuple[int, int, str, str]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket on the machine."""
    rows = []
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            rows.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, inode))
    return rows


def _listeners(port: int) -> int:
    return sum(1 for local, _, state, _ in _tcp_sockets() if local == port and state == "0A")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(child) for child in f.read().split()]


def _owner(gateway_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the gateway's end of the connection from `client_port`."""
    inodes = {
        inode
        for local, remote, _, inode in _tcp_sockets()
        if local == gateway_port and remote == client_port
    }
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(FileNotFoundError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return pid
    return None


async def _chat_on_new_connection(
    port: int, workers: list[int]
) -> tuple[int, dict[str, str], dict, int | None]:
    """POST one chat completion on a fresh connection; returns the status, the headers, the
    JSON body and the pid of the worker that served it (looked up while the connection is open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        client_port = writer.get_extra_info("sockname")[1]
        body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in filter(None, lines):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await reader.readexactly(int(headers["content-length"]))
        return (
            int(status_line.split()[1]),
            headers,
            orjson.loads(payload),
            _owner(port, client_port, workers),
        )
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _stop(proc: asyncio.subprocess.Process, workers: list[int]) -> None:
    """SIGTERM (the parent passes it on to its workers), then SIGKILL whatever is left."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_a_429_seen_by_one_worker_keeps_every_worker_off_that_key(
    tmp_path: Path, fake_upstream
):
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    # round-robin starts at the first target in every process: on its first request each
    # worker tries `limited` first unless it already knows that key is cooling down.
    cfg = config(
        {"limited": openai_provider(limited), "ok": openai_provider(ok)},
        {"m": model("limited", "ok", strategy="round-robin")},
        retry={"cooldown_max_s": 300},  # Retry-After is capped at 12 × this: keep the 60 s
    )
    path = write(tmp_path, cfg)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        *(str(BIN), "serve", "--config", str(path), "--port", str(port), "--workers", "2"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,  # default state files (records, stored responses) land here
    )
    workers: list[int] = []
    try:
        await wait_ready(base_url, proc)
        deadline = time.monotonic() + 20
        while _listeners(port) < 2 or len(workers) < 2:
            assert time.monotonic() < deadline, (
                f"the two workers did not both start listening ({_listeners(port)} listener(s), "
                f"workers {workers}):\n" + (tmp_path / "serve.log").read_text(errors="replace")
            )
            await asyncio.sleep(0.05)
            workers = _children(proc.pid)

        served_by = []
        for _ in range(REQUESTS):
            status, headers, body, pid = await _chat_on_new_connection(port, workers)
            assert status == 200, body
            assert headers["x-apex-provider"] == "ok"
            assert body["choices"][0]["message"]["content"].startswith("ok ")
            served_by.append(pid)

        assert None not in served_by, f"a connection was served by no known worker: {served_by}"
        assert set(served_by) == set(workers), f"one worker served everything: {served_by}"
        assert len(limited.requests) == 1, (
            f"the rate-limited upstream was hit {len(limited.requests)} times"
        )
        assert len(ok.requests) == REQUESTS
    finally:
        await _stop(proc, workers)
        log.close()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert proc.returncode == 0, output
    assert "Traceback" not in output
