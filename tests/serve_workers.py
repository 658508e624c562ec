"""Helpers for tests that run `serve --workers N` as a real subprocess and need to know which
worker served a request (Linux /proc: the socket's inode among a worker's descriptors)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import orjson
from cli_run import terminate


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
