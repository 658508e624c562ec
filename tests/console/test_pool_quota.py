"""The Key pool page's quota: each key's per-model rows from the quota-aware pool (with the
resolved configured limits), the key × model heat map, and a key whose quota is spent, through
a real gateway in front of the quota-enforcing fake upstream (tests/fakes/quota_upstream.py).

Screenshots go to tmp/artefacts/console/ (browser_support.py): look at them.
"""

from __future__ import annotations

import time
from typing import Any

from browser_support import PHONE, log_in, needs_browser, new_page, shot
from console_support import ADMIN, CLIENT, MESSAGES, admin_get

from apex_ai_proxy.keypool.limits import next_daily_reset

KEY_Q = "sk-q-secret-key-222222-QQQQ"  # limits: rpm 3 (its own), rpd 100 (its provider's)
KEY_U = "sk-u-secret-key-333333-UUUU"  # no limits
GEM_A = "gem-a-secret-key-4444-GEMA"  # the fake allows it one request a day
GEM_B = "gem-b-secret-key-5555-GEMB"


def quota_config(fake, tmp_path) -> dict[str, Any]:
    def openai(keys: list[Any], **more: Any) -> dict[str, Any]:
        return {"kind": "openai", "base_url": fake.base_url, "api_keys": keys, **more}

    return {
        "gateway_tokens": [CLIENT],
        "admin_tokens": [ADMIN],
        "providers": {
            "q": openai([{"key": KEY_Q, "limits": {"rpm": 3}}], limits={"rpd": 100}),
            "u": openai([KEY_U]),
            "gem": {"kind": "gemini", "base_url": fake.root_url, "api_keys": [GEM_A, GEM_B]},
        },
        "models": {
            "m": {"providers": [{"provider": "q", "model": "m"}]},
            "u": {"providers": [{"provider": "u", "model": "m"}]},
            "g": {"providers": [{"provider": "gem", "model": "gemini-fake"}]},
        },
        "retry": {"cooldown_base_s": 0.05},
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "sqlite", "path": str(tmp_path / "records.db")}],
        },
    }


async def start(gateway, quota_upstream, tmp_path):
    fake = await quota_upstream(rpd={GEM_A: 1, GEM_B: 100})
    return fake, await gateway(quota_config(fake, tmp_path))


async def chat(gw, model: str) -> int:
    async with gw.http().post(
        "/v1/chat/completions",
        json={"model": model, "messages": MESSAGES},
        headers={"authorization": f"Bearer {CLIENT}"},
    ) as resp:
        await resp.read()
        return resp.status


def quota_rows(pool: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["unit"]: q for key in pool["keys"] for q in key["quota"]}


async def test_quota_rows_carry_the_resolved_limits(gateway, quota_upstream, tmp_path):
    fake, gw = await start(gateway, quota_upstream, tmp_path)
    assert [await chat(gw, "m") for _ in range(2)] == [200, 200]

    status, pool = await admin_get(gw, "/admin/pool")

    assert status == 200
    rows = quota_rows(pool)
    q = rows["q#0|m"]
    # The key's own rpm over its provider's rpd: the limits the pool enforces.
    assert q["limits"] == {"rpm": 3, "rpd": 100}
    assert q["remaining"] == {"rpm": 1, "rpd": 98}
    assert q["headroom"] == round(1 / 3, 4)  # the tightest window: rpm
    assert q["state"] == "ok" and q["until"] is None
    # A key without limits says so: no limits, no share left (not "all of it").
    u = rows["u#0|m"]
    assert u["limits"] == {} and u["remaining"] == {} and u["headroom"] is None
    assert rows["gem#0|gemini-fake"]["limits"] == {}
    text = str(pool)
    assert all(secret not in text for secret in (KEY_Q, KEY_U, GEM_A, GEM_B))


@needs_browser
async def test_a_limited_key_counts_down_in_the_rows_and_the_heat_map(
    gateway, quota_upstream, tmp_path, browser
):
    fake, gw = await start(gateway, quota_upstream, tmp_path)
    page = await new_page(browser)
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.click("nav a[data-page=pool]")
    row = page.locator('#pool tr[data-unit="q#0|m"]')
    cell = page.locator('#pool-heat td[data-unit="q#0|m"]')
    await cell.wait_for()
    assert "3 / 3" in await row.inner_text() and "3 / 3" in await cell.inner_text()
    await page.evaluate("window.__notReloaded = true")

    assert [await chat(gw, "m") for _ in range(2)] == [200, 200]

    await page.wait_for_function(
        """() => document.querySelector('#pool-heat td[data-unit="q#0|m"]')
                   ?.innerText.includes('1 / 3')""",
        timeout=10_000,
    )
    assert await page.evaluate("window.__notReloaded === true")
    assert "1 / 3" in await row.inner_text()  # rpm left of its limit
    assert "98 / 100" in await row.inner_text()  # rpd: the provider's limit
    said = await cell.locator(".sr").inner_text()
    assert said == "q#0 × m: 1 of 3 requests per minute left (33 %)"
    # Its colour is a third of the way from "nothing left" to "all left".
    share = await cell.evaluate("c => getComputedStyle(c).getPropertyValue('--share')")
    assert abs(float(share) - 1 / 3) < 1e-3
    full = page.locator('#pool-heat td[data-unit="gem#1|gemini-fake"]')  # no limits: not green
    colours = [await c.evaluate("c => getComputedStyle(c).backgroundColor") for c in (cell, full)]
    assert colours[0] not in ("rgba(0, 0, 0, 0)", colours[1])
    unlimited = page.locator('#pool-heat td[data-unit="u#0|m"]')
    assert "no limit" in await unlimited.inner_text()
    assert "no limit configured" in await unlimited.locator(".sr").inner_text()
    assert "QQQQ" in await page.inner_text("#pool") and KEY_Q not in await page.content()
    await shot(page, "pool-quota-1280-light")
    await page.click("#theme")
    await page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    await shot(page, "pool-quota-1280-dark")
    phone = await new_page(browser, PHONE, "dark")
    await log_in(phone, gw)
    await phone.wait_for_selector("#totals")
    await phone.click("nav a[data-page=pool]")
    await phone.locator('#pool-heat td[data-unit="q#0|m"]').wait_for()
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the pool page must not scroll sideways on a phone"
    await shot(phone, "pool-quota-phone-dark")
    # The keys table scrolls sideways on a phone; a refresh keeps where it was scrolled to.
    await phone.evaluate("document.querySelector('#pool .table-wrap').scrollLeft = 200")
    stamp = await phone.inner_text("#pool-updated")
    await phone.wait_for_function(
        f"() => document.querySelector('#pool-updated').textContent !== {stamp!r}"
    )
    assert await phone.evaluate("document.querySelector('#pool .table-wrap').scrollLeft") == 200
    assert page.errors == [] and phone.errors == []


@needs_browser
async def test_a_spent_quota_shows_its_state_and_reset_time(
    gateway, quota_upstream, tmp_path, browser
):
    fake, gw = await start(gateway, quota_upstream, tmp_path)
    page = await new_page(browser, scheme="dark")
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.click("nav a[data-page=pool]")
    await page.locator('#pool-heat td[data-unit="gem#0|gemini-fake"]').wait_for()
    await page.evaluate("window.__notReloaded = true")

    # gem#0 serves once, then answers Gemini's per-day 429: out until midnight Pacific.
    assert [await chat(gw, "g") for _ in range(3)] == [200, 200, 200]
    assert fake.refused == [(GEM_A, "gemini")]
    reset = next_daily_reset(time.time(), "America/Los_Angeles")
    # u#0's quota is spent elsewhere for a while: OpenAI's 429 with its headers.
    fake.exhaust(KEY_U, 90)
    assert await chat(gw, "u") == 429

    gem = page.locator('#pool tr[data-unit="gem#0|gemini-fake"]')
    await page.wait_for_function(
        """() => document.querySelector('#pool tr[data-unit="gem#0|gemini-fake"] .state')
                   ?.textContent === 'quota exhausted'""",
        timeout=10_000,
    )
    assert await page.evaluate("window.__notReloaded === true")
    clock = await page.evaluate(f"new Date({reset} * 1000).toLocaleTimeString()")
    assert f"resets {clock}" in await gem.inner_text()
    assert "out" in (await gem.get_attribute("class") or "")  # it stands out
    cell = page.locator('#pool-heat td[data-unit="gem#0|gemini-fake"]')
    assert "out" in (await cell.get_attribute("class") or "")
    assert f"resets {clock}" in await cell.inner_text()
    said = await cell.locator(".sr").inner_text()
    assert said == f"gem#0 × gemini-fake: quota exhausted, resets {clock}"
    await page.wait_for_function(
        """() => document.querySelector('#pool tr[data-unit="u#0|m"] .state')
                   ?.textContent === 'rate limited'""",
        timeout=10_000,
    )
    u = await page.inner_text('#pool tr[data-unit="u#0|m"]')
    assert "until " in u
    assert "rate limited" in await page.inner_text('#pool-heat td[data-unit="u#0|m"]')
    other = page.locator('#pool tr[data-unit="gem#1|gemini-fake"] .state')
    assert await other.inner_text() == "ok"
    await shot(page, "pool-quota-exhausted-1280-dark")
    await page.click("#theme")
    await shot(page, "pool-quota-exhausted-1280-light")
    assert page.errors == []
