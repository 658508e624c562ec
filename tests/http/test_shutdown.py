"""SIGTERM always ends the process within `server.shutdown_grace_s`, records flushed first
(issue 10 #7). The cause of the hang: the records drain loop waited with `asyncio.wait_for`,
which on Python 3.11 swallows a cancel that arrives just as its event is set, so `stop()` waited
on it forever. The CLI test runs the real `serve` under keep-alive load, repeatedly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "telemetry"))
from cli_run import BIN, cli_env, wait_ready, write  # noqa: E402
from fakes.ports import free_port  # noqa: E402
from records_helpers import build_record  # noqa: E402

from apex_ai_proxy.telemetry import Recorder  # noqa: E402
from apex_ai_proxy.telemetry.config import RecordsConfig  # noqa: E402

GRACE = 2.0


async def test_records_drain_stops_when_cancelled_as_a_batch_arrives(tmp_path):
    for turns in range(6):  # the cancel lands at each step of the wake-up in turn
        path = tmp_path / f"records-{turns}.jsonl"
        config = RecordsConfig(batch_size=1, sinks=[{"type": "jsonl", "path": str(path)}])
        recorder = Recorder(config)
        await recorder.start()
        await asyncio.sleep(0.05)  # the drain loop is waiting for a batch
        recorder.submit(build_record())
        for _ in range(turns):
            await asyncio.sleep(0)
        started = time.monotonic()
        # On a hang, this timeout's cancel reaches the drain loop through stop() and ends it:
        # the time taken tells the hang apart.
        async with asyncio.timeout(3):
            await recorder.stop(grace=1.0)
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"the drain loop ignored its cancel (after {turns} turns)"
        assert len(path.read_text().splitlines()) == 1, turns


CONFIG = {
    "providers": {"echo": {"kind": "echo"}},
    "models": {"echo": {"providers": [{"provider": "echo"}]}},
    "server": {"shutdown_grace_s": GRACE},
}
BODY = orjson.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%b" % (len(BODY), BODY)
)


async def _keep_alive_client(port: int, until: float) -> int:
    """One keep-alive connection sending requests back to back until `until` (at least one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while done == 0 or time.monotonic() < until:
            writer.write(REQUEST)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            done += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
    return done


async def _serve_load_sigterm(tmp_path: Path, run: int, workers: int) -> float:
    """Start `serve`, load it from 50 keep-alive connections for a second, SIGTERM once the load
    stopped; returns how long the process took to exit."""
    folder = tmp_path / f"run{run}"
    folder.mkdir()
    port = free_port()
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        str(BIN),
        "serve",
        "--config",
        str(write(folder, CONFIG)),
        "--port",
        str(port),
        "--workers",
        str(workers),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=folder,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc, deadline_s=30)
        until = time.monotonic() + 1.0
        done = await asyncio.gather(*(_keep_alive_client(port, until) for _ in range(50)))
        assert sum(done) >= 50
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            await asyncio.wait_for(proc.wait(), GRACE + 2)
        except TimeoutError:
            pytest.fail(f"run {run}: still alive {GRACE + 2} s after SIGTERM")
        output = (folder / "serve.log").read_text(errors="replace")
        assert proc.returncode == 0, output
        assert "Traceback" not in output
        return time.monotonic() - sent
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def test_sigterm_after_keep_alive_load_exits_within_grace_every_time(tmp_path):
    await asyncio.gather(*(_serve_load_sigterm(tmp_path, run, 1) for run in range(10)))


async def test_sigterm_after_keep_alive_load_exits_within_grace_with_two_workers(tmp_path):
    await asyncio.gather(*(_serve_load_sigterm(tmp_path, i, 2) for i in range(2)))
