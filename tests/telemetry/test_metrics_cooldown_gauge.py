"""`apex_keys_in_cooldown` with several workers sharing one PROMETHEUS_MULTIPROC_DIR.

Cooldowns are shared by the workers, and whichever worker answers `/metrics` sets the gauge
from the shared table just before rendering. So the value written last is the true one: a
higher value another worker wrote at an earlier scrape is stale and must not win.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apex_ai_proxy.telemetry import mark_process_dead, prepare_multiprocess_dir
from apex_ai_proxy.telemetry.metrics import MULTIPROC_ENV

SRC = Path(__file__).resolve().parents[2] / "src"

# A long-lived worker: each line on stdin is one scrape. A number is the count of keys it sees
# cooling down (set, as the server does, before rendering); an empty line only renders. It
# answers with the rendered apex_keys_in_cooldown{provider="p"} value(s), comma-separated.
WORKER = """
import sys
from apex_ai_proxy.telemetry import render_metrics, set_keys_in_cooldown
prefix = 'apex_keys_in_cooldown{provider="p"} '
for line in sys.stdin:
    if line.strip():
        set_keys_in_cooldown("p", int(line))
    text = render_metrics()[0].decode()
    print(",".join(l[len(prefix):] for l in text.splitlines() if l.startswith(prefix)), flush=True)
"""


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=os.environ | {"PYTHONPATH": str(SRC)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def scrape(self, cooling: int | None = None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("" if cooling is None else str(cooling))
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Worker]]:
    monkeypatch.setenv(MULTIPROC_ENV, "placeholder")  # restored after the test
    prepare_multiprocess_dir(tmp_path / "metrics")
    started = [Worker(), Worker()]
    try:
        yield started
    finally:
        for worker in started:
            if worker.proc.poll() is None:
                worker.stop()


def test_the_worker_answering_metrics_reports_the_current_count(workers: list[Worker]) -> None:
    a, b = workers
    assert a.scrape(3) == "3.0"  # three keys cooling down when `a` answers
    assert b.scrape(0) == "0.0"  # they have cooled off when `b` answers, `a` is still alive
    assert a.scrape(1) == "1.0"
    assert b.scrape(0) == "0.0"
    assert a.scrape() == "0.0"  # a render alone shows the value written last, by any worker


def test_a_dead_workers_value_is_dropped(workers: list[Worker]) -> None:
    a, b = workers
    assert b.scrape(0) == "0.0"
    assert a.scrape(2) == "2.0"
    a.stop()
    mark_process_dead(a.proc.pid)
    assert b.scrape() == "0.0"  # `a`'s later value went with it
