"""A private redis-server on a free loopback port, to stop and restart in outage tests.

Never the shared Redis on 6379: tests that take Redis away start their own with this.

    server = await RedisServer(tmp_path).start()   # waits until it answers PING
    await server.restart()                          # stop, then start again on the same port
    await server.stop()
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from fakes.ports import free_port


def redis_server_skip_reason() -> str | None:
    return None if shutil.which("redis-server") else "redis-server is not installed"


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, *, persist: bool = False) -> None:
        """`persist`: keep data across a restart (append-only file in `workdir`)."""
        self.port = port or free_port()
        self.workdir = workdir
        self.persist = persist
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    async def start(self, timeout: float = 10.0) -> RedisServer:
        if reason := redis_server_skip_reason():
            pytest.skip(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persist else "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not await self._answers():
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer")
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        """SIGTERM (Redis writes its append-only file and exits), then wait for the exit."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _answers(self) -> bool:
        client = Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(await client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            await client.aclose()
