"""`apex-ai-proxy keys …` through a real config file, in a real process, against the store a
running gateway reads: the key is printed once, works at the gateway, and stops working
there within the TTL once revoked."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import yaml
from vk_support import chat, gateway_config

TTL = 0.2


def cli(config_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apex_ai_proxy", "keys", *args, "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def until(gw, key: str, status: int, model: str = "m1") -> None:
    deadline = time.monotonic() + 30 * TTL
    while (await chat(gw, key, model=model))[0] != status:
        assert time.monotonic() < deadline, f"never {status}"
        await asyncio.sleep(TTL / 2)


async def test_cli_round_trip_through_a_real_config_file(gateway, store_config, tmp_path):
    config = gateway_config(store_config, cache_ttl_s=TTL)
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    made = await asyncio.to_thread(
        cli, path, "create", "--name", "ci", "--models", "m1", "--rpm", "50",
        "--budget", "10000", "--budget-period", "7d", "--expires", "30d", "--metadata", "team=qa",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("sk-apex-") and "\n" not in key
    gw = await gateway(config)
    assert (await chat(gw, key))[0] == 200
    assert (await chat(gw, key, model="m2"))[0] == 403

    listed = await asyncio.to_thread(cli, path, "list")
    assert listed.returncode == 0 and "ci" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout and key[12:] not in listed.stdout
    shown = json.loads((await asyncio.to_thread(cli, path, "show", "ci")).stdout)
    assert shown["rpm"] == 50 and shown["metadata"] == {"team": "qa"}
    assert shown["budget_period"] == "7d" and shown["period_spend"] > 0  # the 200 above

    updated = await asyncio.to_thread(cli, path, "update", "ci", "--models", "m1,m2")
    assert updated.returncode == 0, updated.stderr
    await until(gw, key, 200, model="m2")  # the gateway read the change within its TTL
    cleared = await asyncio.to_thread(cli, path, "update", "ci", "--rpm", "0", "--models", "*")
    assert cleared.returncode == 0, cleared.stderr
    shown = json.loads(cleared.stdout)
    assert shown["rpm"] is None and shown["models"] is None

    rotated = await asyncio.to_thread(cli, path, "rotate", "ci")
    new_key = rotated.stdout.strip()
    assert rotated.returncode == 0 and new_key != key
    await until(gw, key, 401)
    assert (await chat(gw, new_key))[0] == 200

    revoked = await asyncio.to_thread(cli, path, "revoke", "ci")
    assert revoked.returncode == 0
    await until(gw, new_key, 401)
    as_json = json.loads((await asyncio.to_thread(cli, path, "list", "--json")).stdout)
    assert as_json[0]["state"] == "revoked"

    missing = await asyncio.to_thread(cli, path, "show", "nobody")
    assert missing.returncode == 1 and "no key named" in missing.stderr
    bad = await asyncio.to_thread(cli, path, "create", "--name", "x", "--rpm", "0")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
