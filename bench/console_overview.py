"""How fast the console's overview is on a week of records: fills a SQLite records file with
N records (default 1 M, spread evenly over 7 days, through the sink's own schema) and times
`telemetry.series.overview` for every range.

    .venv/bin/python -m bench.console_overview [--records 1000000] [--db /tmp/overview.db]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from contextlib import closing
from pathlib import Path

from apex_ai_proxy.telemetry.series import RANGES, overview
from apex_ai_proxy.telemetry.sinks.sqlite import INSERT_RECORD, connect

MODELS = [("gpt-4o", "openai"), ("gpt-4o", "azure"), ("claude", "anthropic"), ("mini", "openai")]


def fill(db: Path, count: int, now: float) -> None:
    rng = random.Random(7)
    span = 7 * 86400
    with closing(connect(str(db))) as conn:
        rows = []
        for i in range(count):
            model, provider = MODELS[i % len(MODELS)]
            ts = now - span + span * i / count
            status = 200 if rng.random() > 0.03 else rng.choice((429, 500, 502))
            duration = rng.lognormvariate(6.5, 0.6)
            rows.append((ts, f"req_{i:08x}", "/v1/chat/completions", "token-1", model, model,
                         provider, model, "routed", 1, status, None, duration, duration / 4,
                         rng.randint(10, 2000), rng.randint(1, 800), 0.0004,
                         '{"attempts": []}'))  # fmt: skip
            if len(rows) == 50_000:
                conn.execute("BEGIN")
                conn.executemany(INSERT_RECORD, rows)
                conn.execute("COMMIT")
                rows.clear()
        if rows:
            conn.execute("BEGIN")
            conn.executemany(INSERT_RECORD, rows)
            conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/apex-overview-bench.db")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    db = Path(args.db)
    now = time.time()
    if not db.exists():
        started = time.perf_counter()
        fill(db, args.records, now)
        print(f"filled {args.records} records in {time.perf_counter() - started:.1f}s")
    print(f"{db}: {db.stat().st_size / 1e6:.0f} MB")
    for name in RANGES:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = overview(db, name, now=now)
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"overview {name:>4}: {result['totals']['requests']:>8} records, "
            f"median {statistics.median(times):6.1f} ms, max {max(times):6.1f} ms"
        )


if __name__ == "__main__":
    main()
