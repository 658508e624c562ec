"""Optional `--profile`: sample the gateway with py-spy during each measured run.

Writes collapsed stacks (`profile-<scenario>.txt`, loadable by speedscope or flamegraph.pl) next
to the results and keeps a summary: the frames where samples end (self time) and the gateway's
own functions by inclusive time.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path


def find_py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


class Profiler:
    def __init__(self, pid: int, output: Path, duration_s: float, rate: int = 200) -> None:
        self.output = output
        py_spy = find_py_spy()
        if py_spy is None:
            raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
        cmd = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(output)]
        cmd += ["--duration", str(max(1, round(duration_s))), "--rate", str(rate), "--nonblocking"]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def finish(self, top: int = 12) -> dict:
        try:
            _, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return {"error": "py-spy did not finish"}
        if not self.output.exists():
            return {"error": f"py-spy failed: {err.strip()[-300:]}"}
        return summarize(self.output.read_text(), top) | {"stacks": str(self.output)}


def _frame_name(frame: str) -> str:
    """`serve (apex_ai_proxy/lifecycle.py:52)` -> `serve (apex_ai_proxy/lifecycle.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def summarize(collapsed: str, top: int = 12) -> dict:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame_name(f) for f in stack.split(";")]
        self_time[frames[-1]] += samples
        for frame in set(frames):
            if "apex_ai_proxy/" in frame:
                inclusive[frame] += samples
    if not total:
        return {"samples": 0}

    def share(counter: collections.Counter[str]) -> list[list]:
        return [[frame, round(100 * n / total, 1)] for frame, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_pct": share(self_time),
        "gateway_inclusive_pct": share(inclusive),
    }
