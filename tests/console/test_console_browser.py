"""The console in a real browser: Playwright driving Debian's Chromium (browser_support.py).

Screenshots go to tmp/artefacts/console/ (or $APEX_ARTEFACTS), never committed: look at them.
"""

from __future__ import annotations

import pytest
from browser_support import PHONE, log_in, needs_browser, new_page, shot
from console_support import (
    ADMIN,
    CLIENT,
    KEY_A,
    MESSAGES,
    console_config,
    failover_request,
    recorded,
    story_of,
)
from fakes.openai_upstream import rate_limited

pytestmark = needs_browser


async def start(gateway, fake_upstream, tmp_path):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    gw = await gateway(console_config(a.base_url, b.base_url, tmp_path))
    return a, b, gw


async def test_login_then_overview_charts_show_the_requests_just_made(
    gateway, fake_upstream, tmp_path, browser
):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    client = gw.openai(CLIENT)
    for _ in range(6):
        await client.chat.completions.create(model="only-b", messages=MESSAGES)
    await recorded(gw, 6)
    page = await new_page(browser)
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.wait_for_function("() => Console.charts.length === 6")
    assert await page.inner_text("#totals .tile:first-child .value") == "6"
    # The requests chart holds the traffic: 6 requests, 0 errors, drawn on a canvas.
    drawn = await page.evaluate(
        "Console.charts[0].data.slice(1).map(s => s.reduce((x, y) => x + (y || 0), 0))"
    )
    assert drawn == [6, 0]
    assert await page.locator(".uplot canvas").count() == 6
    assert await page.locator("text=only-b").count() >= 1
    await shot(page, "overview-1280-light")
    await page.click("#theme")
    await page.wait_for_function("() => Console.charts.length === 6")
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
    await shot(page, "overview-1280-dark")
    phone = await new_page(browser, PHONE, "dark")
    await log_in(phone, gw)
    await phone.wait_for_function("() => Console.charts.length === 6")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the overview must not scroll sideways on a phone"
    await shot(phone, "overview-phone-dark")
    assert page.errors == [] and phone.errors == []


async def test_a_key_turns_rate_limited_without_reloading(
    gateway, fake_upstream, tmp_path, browser
):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    page = await new_page(browser)
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.click("nav a[data-page=pool]")
    row = page.locator('tr[data-key="a#0"]')
    await row.locator(".state").wait_for()
    assert await row.locator(".state").inner_text() == "ok"
    assert "AAAA" in await row.inner_text() and KEY_A not in await page.content()
    await page.evaluate("window.__notReloaded = true")
    a.default = rate_limited(retry_after=60)
    await failover_request(gw, a)
    await page.wait_for_function(
        """() => document.querySelector('tr[data-key="a#0"] .state')?.textContent === 'rate limited'""",
        timeout=10_000,
    )
    assert await page.evaluate("window.__notReloaded === true")
    assert "429" in await row.inner_text()
    # and the timeline of failed attempts draws that 429 for provider a
    await page.wait_for_function(
        "() => Console.charts.length === 2 && Console.charts[0].series[1]?.label === 'a'"
    )
    assert await page.evaluate("Console.charts[0].data[1].reduce((x, y) => x + y, 0)") >= 1
    await shot(page, "pool-rate-limited-1280")
    phone = await new_page(browser, PHONE)
    await log_in(phone, gw)
    await phone.wait_for_selector("#totals")
    await phone.click("nav a[data-page=pool]")
    await phone.locator('tr[data-key="a#0"] .state').wait_for()
    await shot(phone, "pool-phone-light")
    assert page.errors == []


async def test_a_failed_over_request_shows_both_attempts(gateway, fake_upstream, tmp_path, browser):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    a.default = rate_limited(retry_after=60)
    request_id = await failover_request(gw, a)
    await story_of(gw, request_id)
    page = await new_page(browser, scheme="dark")
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.click("nav a[data-page=requests]")
    await page.fill("input[name=provider]", "b")
    await page.click("form.toolbar button[type=submit]")
    await page.locator(f"#requests tr:has-text('{request_id}')").click()
    rows = page.locator("#attempts tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 2
    first, second = await rows.nth(0).inner_text(), await rows.nth(1).inner_text()
    assert "a#0" in first and "429" in first
    assert "b#0" in second and "200" in second
    await shot(page, "request-story-1280-dark")
    assert page.errors == []


async def test_the_login_form_refuses_client_and_wrong_tokens(
    gateway, fake_upstream, tmp_path, browser
):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    page = await new_page(browser)
    await log_in(page, gw, CLIENT)
    await page.wait_for_function("() => document.querySelector('#login-error').textContent !== ''")
    assert "client token" in await page.inner_text("#login-error")
    assert await page.locator("#shell").is_hidden()
    assert await page.context.cookies() == []
    await shot(page, "login-refused")
    await page.fill("#login-token", "not-a-token")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_function(
        "() => document.querySelector('#login-error').textContent.includes('Invalid')"
    )
    # The admin token opens it; the cookie is HttpOnly and SameSite=Strict.
    await page.fill("#login-token", ADMIN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#totals")
    (cookie,) = await page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""


async def test_config_page_masks_secrets_and_says_what_is_missing(
    gateway, fake_upstream, tmp_path, browser
):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    page = await new_page(browser)
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.goto(gw.base_url + "/ui/#/config")
    await page.wait_for_selector("#config")
    text = await page.inner_text("#config")
    assert "[REDACTED]" in text and KEY_A not in text and ADMIN not in text
    await shot(page, "config-1280-light")
    await page.click("text=Reload config")
    await page.wait_for_selector("#reload-result p")
    reload_answer = await page.inner_text("#reload-result")
    await page.goto(gw.base_url + "/ui/#/keys")
    await page.wait_for_selector("#keys, #keys-unavailable")
    keys_api = await page.evaluate("fetch('/admin/keys').then(r => r.status)")
    if keys_api == 404:
        assert "not available" in await page.inner_text("#keys-unavailable")
    await shot(page, "keys-page")
    if "not available" in reload_answer:
        assert "POST /admin/reload answers 404" in reload_answer
    assert page.errors == []


async def test_virtual_keys_create_and_revoke(gateway, fake_upstream, tmp_path, browser):
    from apex_ai_proxy.config import Config

    if "virtual_keys" not in Config.model_fields:
        pytest.skip("this build has no virtual keys (issue 16): no /admin/keys to drive")
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    store = {"store": {"backend": "sqlite", "path": str(tmp_path / "keys.db")}}
    gw = await gateway(console_config(a.base_url, b.base_url, tmp_path, virtual_keys=store))
    page = await new_page(browser)
    await log_in(page, gw)
    await page.wait_for_selector("#totals")
    await page.click("nav a[data-page=keys]")
    await page.fill("input[name=name]", "console-test")
    await page.fill("input[name=rpm]", "60")
    await page.click("text=Create")
    shown = await page.locator("#new-key-value").inner_text()
    assert shown.startswith("sk-")
    row = page.locator("#keys tr:has-text('console-test')")
    assert shown not in await row.inner_text()  # shown once, above; never in the list
    await shot(page, "keys-created")
    # Edit: only the changed field is sent (PATCH), the list shows the new limit.
    await row.locator("text=Edit").click()
    editor = page.locator("textarea")
    await page.locator("#key-editor .uplot").nth(1).wait_for()  # spend per day, 30 days
    await shot(page, "keys-edit-spend")
    edited = (await editor.input_value()).replace('"rpm": 60', '"rpm": 90')
    await editor.fill(edited)
    await page.click("text=Save")
    await page.wait_for_selector("#keys tr:has-text('console-test'):has-text('90')")
    page.on("dialog", lambda dialog: dialog.accept())
    await row.locator("[data-revoke]").click()
    await page.wait_for_selector("#keys tr:has-text('console-test'):has-text('revoked')")
    await page.reload()  # the key is not shown again after a reload either
    await page.wait_for_selector("#keys tr:has-text('console-test')")
    assert shown not in await page.content()
    await shot(page, "keys-revoked")
    assert page.errors == []
