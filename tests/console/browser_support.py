"""Shared by the console's browser tests: Playwright driving Debian's Chromium (no browser
download is possible here; the tests are skipped, with the reason, when /usr/bin/chromium or
playwright is missing), pages that collect script errors, log-in and screenshots.

Screenshots go to tmp/artefacts/console/ (or $APEX_ARTEFACTS), never committed: look at them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from console_support import ADMIN

CHROMIUM = os.environ.get("APEX_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(
    os.environ.get("APEX_ARTEFACTS", Path(__file__).resolve().parents[2] / "tmp/artefacts/console")
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

try:
    from playwright import async_api as playwright_api
except ImportError:  # pragma: no cover - the skip below says so
    playwright_api = None

needs_browser = pytest.mark.skipif(
    playwright_api is None or not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
    reason=f"needs playwright and Chromium at {CHROMIUM}: apt-get install chromium "
    "(or set APEX_CHROMIUM)",
)


async def new_page(browser, viewport=DESKTOP, scheme="light"):
    context = await browser.new_context(viewport=viewport, color_scheme=scheme)
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.on("console", lambda msg: _console_error(page, msg))
    return page


def _console_error(page, msg) -> None:
    """Script errors and CSP refusals count; the browser's note on an HTTP error status does
    not (the page asks GET /admin/session before login and expects a 401)."""
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        page.errors.append(msg.text)


async def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


async def log_in(page, gw, token: str = ADMIN) -> None:
    await page.goto(gw.base_url + "/ui/")
    await page.fill("#login-token", token)
    await page.click("#login-form button[type=submit]")
