"""After real traffic: /metrics counts requests by endpoint/model/provider/status, and the
`apex-ai-proxy logs` / `stats` commands print readable tables from the records file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from fakes.openai_upstream import server_error
from records_gateway_support import MESSAGES, TOKEN, provider, records, records_section

MODEL = "metrics-cli-model"  # unique: the metrics registry lives as long as the test process


async def traffic(gateway, fake_upstream, tmp_path: Path):
    alpha = await fake_upstream("alpha")
    gw = await gateway(
        {
            "gateway_tokens": [TOKEN],
            "providers": {"alpha": provider(alpha.base_url, "sk-alpha-key-0000")},
            "models": {MODEL: {"providers": [{"provider": "alpha", "model": "up-m"}]}},
            "records": records_section(tmp_path),
        }
    )
    client = gw.openai(TOKEN)
    for _ in range(3):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    alpha.queue(server_error(400))  # a client error from upstream: returned as is
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    await client.embeddings.create(model=MODEL, input="embed me")
    return gw


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_endpoint_model_provider_and_status(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    gw = await traffic(gateway, fake_upstream, tmp_path)
    async with gw.http().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
        text = await resp.text()
    chat = {"endpoint": "/v1/chat/completions", "model": MODEL, "provider": "alpha"}
    assert sample(text, "apex_requests_total", **chat, status="200") == 3
    assert sample(text, "apex_requests_total", **chat, status="400") == 1
    embeddings = {**chat, "endpoint": "/v1/embeddings"}
    assert sample(text, "apex_requests_total", **embeddings, status="200") == 1
    duration = {"endpoint": "/v1/chat/completions", "model": MODEL}
    assert sample(text, "apex_request_duration_seconds_count", **duration) == 4
    assert sample(text, "apex_tokens_total", model=MODEL, provider="alpha", kind="prompt") > 0


def run_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "apex_ai_proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_logs_and_stats_print_tables_of_the_requests_made(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    gw = await traffic(gateway, fake_upstream, tmp_path)
    made = await records(gw, tmp_path)  # also flushes the SQLite sink
    assert len(made) == 5
    db = str(tmp_path / "records.db")

    logs = run_cli("logs", "--db", db).splitlines()
    assert logs[0].split()[:4] == ["TIME", "STATUS", "MODEL", "PROVIDER"]
    rows = [line.split() for line in logs[1:] if line.strip()]
    assert len(rows) == 5
    # TIME is "MM-DD HH:MM:SS": the status is the third word
    assert sorted(row[2] for row in rows) == ["200", "200", "200", "200", "400"]
    assert all(row[3:5] == [MODEL, "alpha"] for row in rows)
    assert {r["request_id"] for r in made} == {w for row in rows for w in row if "req_" in w}

    errors = run_cli("logs", "--db", db, "--status", "4xx").splitlines()
    assert [line.split()[2] for line in errors[1:] if line.strip()] == ["400"]

    stats = run_cli("stats", "--db", db).splitlines()
    assert stats[0].split()[:4] == ["MODEL", "PROVIDER", "REQUESTS", "ERR%"]
    (row,) = [line.split() for line in stats[1:] if MODEL in line]
    assert row[:3] == [MODEL, "alpha", "5"]
    assert float(row[3].rstrip("%")) == 20.0


async def test_metrics_count_requests_with_records_disabled(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    alpha = await fake_upstream("alpha")
    gw = await gateway(
        {
            "gateway_tokens": [TOKEN],
            "providers": {"alpha": provider(alpha.base_url, "sk-alpha-key-0000")},
            "models": {"records-off-model": {"providers": [{"provider": "alpha"}]}},
            "records": {"enabled": False},
        }
    )
    client = gw.openai(TOKEN)
    for _ in range(2):
        await client.chat.completions.create(model="records-off-model", messages=MESSAGES)
    async with gw.http().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        text = await resp.text()
    labels = {"endpoint": "/v1/chat/completions", "model": "records-off-model"}
    assert sample(text, "apex_requests_total", **labels, provider="alpha", status="200") == 2
    assert gw.app.services.recorder.sinks == []
