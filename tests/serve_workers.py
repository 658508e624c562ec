"""Helpers for tests that run `serve --workers N` as a real subprocess and need to know which
worker served a request (Linux /proc: the socket's inode among a worker's descriptors)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from cli_run import BIN, cli_env, terminate, wait_ready
from fakes.ports import free_port


def tcp_sockets() -> list[tuple[int, int, str, str]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket on the machine."""
    rows = []
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            rows.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, inode))
    return rows


def listeners(port: int) -> int:
    return sum(1 for local, _, state, _ in tcp_sockets() if local == port and state == "0A")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(child) for child in f.read().split()]


def owner(gateway_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the gateway's end of the connection from `client_port`."""
    inodes = {
        inode
        for local, remote, _, inode in tcp_sockets()
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


async def chat_on_new_connection(
    port: int, workers: list[int], model: str = "m"
) -> tuple[int, dict[str, str], dict, int | None]:
    """POST one chat completion on a fresh connection; returns the status, the headers, the
    JSON body and the pid of the worker that served it (looked up while the connection is open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        client_port = writer.get_extra_info("sockname")[1]
        body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
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
            owner(port, client_port, workers),
        )
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def stop(proc: asyncio.subprocess.Process, workers: list[int]) -> None:
    """SIGTERM (the parent passes it on to its workers), then SIGKILL whatever is left."""
    await terminate(proc, 10)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def two_workers(config_path: Path, workdir: Path) -> AsyncIterator[tuple[int, list[int]]]:
    """`serve --workers 2` on a free port (its output in workdir/serve.log, its state files in
    workdir), until both workers listen: yields (port, the workers' pids). Stopped on the way
    out; after a body that passed, its exit must be clean (status 0, no traceback)."""
    port = free_port()
    log_path = workdir / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        *(str(BIN), "serve", "--config", str(config_path), "--port", str(port), "--workers", "2"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=workdir,  # default state files (records, stored responses) land here
    )
    workers: list[int] = []
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        deadline = time.monotonic() + 20
        while listeners(port) < 2 or len(workers) < 2:
            assert time.monotonic() < deadline, (
                f"the two workers did not both start listening ({listeners(port)} listener(s), "
                f"workers {workers}):\n" + log_path.read_text(errors="replace")
            )
            await asyncio.sleep(0.05)
            workers = children(proc.pid)
        yield port, workers
    finally:
        await stop(proc, workers)
        log.close()
    output = log_path.read_text(errors="replace")
    assert proc.returncode == 0, output
    assert "Traceback" not in output
