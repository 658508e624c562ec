"""/metrics: requests and spend per key name, or one "_all" series when per-key series are off."""

from __future__ import annotations

import uuid

from vk_support import CLIENT, chat, create_key, gateway_config


async def metrics_text(gw) -> str:
    async with gw.http().get("/metrics", headers={"authorization": f"Bearer {CLIENT}"}) as r:
        assert r.status == 200
        return await r.text()


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def test_metrics_count_requests_and_spend_per_key_name(gateway, tmp_path):
    gw = await gateway(gateway_config({"backend": "sqlite", "path": str(tmp_path / "k.db")}))
    name = "m-" + uuid.uuid4().hex[:8]
    key = (await create_key(gw, name=name))["key"]
    for _ in range(2):
        assert (await chat(gw, key))[0] == 200
    text = await metrics_text(gw)
    assert value(text, f'apex_virtual_key_requests_total{{key="{name}"}}') == 2
    assert value(text, f'apex_virtual_key_spend_usd_total{{key="{name}"}}') > 0


async def test_per_key_series_can_be_turned_off(gateway, tmp_path):
    store = {"backend": "sqlite", "path": str(tmp_path / "k.db")}
    gw = await gateway(gateway_config(store, metrics_per_key=False))
    name = "hidden-" + uuid.uuid4().hex[:8]
    key = (await create_key(gw, name=name))["key"]
    before = value(await metrics_text(gw), 'apex_virtual_key_requests_total{key="_all"}')
    assert (await chat(gw, key))[0] == 200
    text = await metrics_text(gw)
    assert name not in text
    assert value(text, 'apex_virtual_key_requests_total{key="_all"}') == before + 1
