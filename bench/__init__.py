"""Apex AI Proxy benchmark: `make bench` (or `python -m bench.run --help`).

Modules, in the order a run uses them:

- `tools`          installs nginx and wrk when missing, plans which CPU runs what
- `fixtures`       the request and response bodies every scenario sends and answers
- `upstream`       the fake upstream: nginx answering fixed JSON and SSE bodies
- `slow_upstream`  a Python upstream that streams one token every interval (many slow streams)
- `gateway`        writes the gateway config, starts it pinned, waits for /readyz, samples RSS
- `wrk`            drives wrk with a generated Lua script and reads its results
- `slow_client`    opens thousands of concurrent streams and measures inter-token gaps
- `scenarios`      what is measured, and the targets each measurement is held to
- `report`         the comparison table and `bench/results/latest.json`
- `run`            the command line that ties them together
"""
