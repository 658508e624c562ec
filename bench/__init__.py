"""Apex AI Proxy benchmark: `make bench` (or `python -m bench.run --help`).

Modules, in the order a run uses them:

- `tools`          installs nginx, wrk and a C compiler when missing, plans which CPU runs what
- `fixtures`       the request and response bodies every scenario sends and answers
- `upstream`       the fake upstream: nginx answering fixed JSON and SSE bodies
- `gateway`        writes the gateway config, starts it pinned, waits for /readyz, samples RSS
- `wrk`            drives wrk with a generated Lua script and reads its results
- `slowload`       builds and runs slowload.c: a slow upstream and a client of thousands of
                   concurrent streams that measures inter-token gaps (C: see why in slowload.py)
- `scenarios`      what is measured, and the targets each measurement is held to
- `report`         the comparison table and `bench/results/latest.json`
- `run`            the command line that ties them together
"""
