"""The console's admin API over real loopback traffic: overview, request log and story, the
key pool; and its auth: session cookie flags, CSRF, client tokens refused, off without
admin_tokens."""

from __future__ import annotations

import time

from console_support import (
    ADMIN,
    CLIENT,
    KEY_A,
    KEY_B,
    MESSAGES,
    admin_get,
    console_config,
    failover_request,
    recorded,
    story_of,
    wait_for,
)
from fakes.openai_upstream import rate_limited


async def start(gateway, fake_upstream, tmp_path, **top):
    a = await fake_upstream("a")
    b = await fake_upstream("b")
    gw = await gateway(console_config(a.base_url, b.base_url, tmp_path, **top))
    return a, b, gw


async def test_overview_counts_the_requests_just_made(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    client = gw.openai(CLIENT)
    for _ in range(5):
        await client.chat.completions.create(model="only-b", messages=MESSAGES)
    await recorded(gw, 5)
    for range_name in ("15m", "1h", "24h", "7d"):
        status, body = await admin_get(gw, f"/admin/overview?range={range_name}")
        assert status == 200, body
        assert body["totals"]["requests"] == 5, range_name
        assert sum(body["series"]["requests"]) == 5
        assert body["totals"]["p50_ms"] is not None
        assert body["by_model"][0]["name"] == "only-b"
        assert body["by_provider"][0]["name"] == "b"
        assert len(body["series"]["t"]) == len(body["series"]["requests"])


async def test_failed_over_request_tells_both_attempts(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    a.default = rate_limited(retry_after=60)
    request_id = await failover_request(gw, a)
    story = await story_of(gw, request_id)
    attempts = story["attempts"]
    assert [(x["provider"], x["status"]) for x in attempts] == [("a", 429), ("b", 200)]
    assert attempts[0]["key_name"] == "a#0" and attempts[0]["reason"]
    assert story["raw"] is None  # records.raw is off
    rows = await recorded(gw, 1, provider="b", status="2xx", key="token-1")
    assert any(r["request_id"] == request_id and r["attempts"] == 2 for r in rows)
    # A 429 key turns rate_limited in the pool, with its time of return; no key is shown.
    status, pool = await admin_get(gw, "/admin/pool")
    keys = {k["key"]: k for k in pool["keys"]}
    assert keys["a#0"]["state"] == "rate_limited"
    assert keys["a#0"]["until"] > time.time() + 5  # Retry-After, capped at 12 x 1 s
    assert keys["a#0"]["rate_limited_1h"] >= 1 and keys["a#0"]["last4"] == "AAAA"
    assert keys["b#0"]["state"] == "ok" and keys["b#0"]["requests_1h"] >= 1
    assert KEY_A not in str(pool) and KEY_B not in str(pool)
    # The timeline counts the 429 per attempt, though the request itself succeeded.
    timeline = pool["timeline"]
    assert sum(timeline["rate_limited"]["a"]) >= 1 and sum(timeline["rate_limited"]["b"]) == 0
    assert len(timeline["t"]) == len(timeline["rate_limited"]["a"]) == 60


async def test_raw_bodies_in_the_story_are_redacted(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    gw2 = await gateway(
        console_config(
            a.base_url, b.base_url, tmp_path,
            records={"raw": True, "flush_interval_s": 0.05,
                     "sinks": [{"type": "sqlite", "path": str(tmp_path / "raw.db")}]},
        )
    )  # fmt: skip
    said = f"my key is {KEY_B}"
    raw = await gw2.openai(CLIENT).chat.completions.with_raw_response.create(
        model="only-b", messages=[{"role": "user", "content": said}]
    )
    await recorded(gw2, 1)
    status, story = await admin_get(gw2, "/admin/requests/" + raw.headers["x-request-id"])
    assert status == 200
    assert "my key is" in story["raw"]["request_body"]
    assert KEY_B not in str(story) and CLIENT not in str(story)


async def test_bad_queries_are_400_not_500(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    for path in (
        "/admin/overview?range=1y",
        "/admin/requests?limit=abc",
        "/admin/requests?limit=100000",
        "/admin/requests?since=inf",
        "/admin/requests?since=1e400m",
        "/admin/requests?status=abc",
        "/admin/requests?before_id=-1",
    ):
        status, body = await admin_get(gw, path)
        assert status == 400, (path, body)
    status, body = await admin_get(gw, "/admin/requests/nope")
    assert status == 404 and body["error"]["code"] == "unknown_request"


async def test_a_client_token_never_reads_admin_data(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    for path in ("/admin/overview", "/admin/pool", "/admin/requests", "/admin/session"):
        assert (await admin_get(gw, path, CLIENT))[0] == 403, path
        assert (await admin_get(gw, path, None))[0] == 401, path
    # nor logs in
    async with gw.http().post("/admin/session", json={"token": CLIENT}) as resp:
        assert resp.status == 403
        assert "set-cookie" not in resp.headers
    async with gw.http().post("/admin/session", json={"token": "wrong"}) as resp:
        assert resp.status == 401


async def login(gw, headers=None):
    session = gw.http()
    async with session.post("/admin/session", json={"token": ADMIN}, headers=headers) as resp:
        assert resp.status == 200
        return session, resp.headers["set-cookie"], (await resp.json())["csrf"]


async def test_session_cookie_flags(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    _, cookie, csrf = await login(gw)
    flags = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
    assert "Secure" not in flags  # served over plain http
    assert ADMIN not in cookie and csrf
    _, https_cookie, _ = await login(gw, {"x-forwarded-proto": "https"})
    assert "Secure" in [part.strip() for part in https_cookie.split(";")]


async def test_cookie_changes_need_the_csrf_token(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    session, cookie, csrf = await login(gw)
    jar = {"cookie": cookie.split(";")[0]}  # aiohttp's jar keeps no cookie from an IP address
    async with session.get("/admin/pool", headers=jar) as resp:  # reads: the cookie is enough
        assert resp.status == 200
    async with session.get("/admin/session", headers=jar) as resp:
        assert (await resp.json())["csrf"] == csrf
    async with session.delete("/admin/session", headers=jar) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "csrf_token_missing"
    async with session.delete("/admin/session", headers={**jar, "x-csrf-token": "0" * 32}) as r:
        assert r.status == 403
    async with session.delete("/admin/session", headers={**jar, "x-csrf-token": csrf}) as resp:
        assert resp.status == 200
        assert "Max-Age=0" in resp.headers["set-cookie"]


async def test_forged_or_foreign_cookies_are_refused(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    _, cookie, _ = await login(gw)
    value = cookie.split(";")[0].split("=", 1)[1]
    name, expiry, nonce, mac = value.split(".")
    for forged in (
        f"{name}.{int(expiry) + 999}.{nonce}.{mac}",  # a longer life
        f"admin-2.{expiry}.{nonce}.{mac}",  # another admin
        f"{name}.{expiry}.{nonce}.{'0' * 64}",
        "garbage",
    ):
        async with gw.http().get("/admin/pool", headers={"cookie": f"apex_console={forged}"}) as r:
            assert r.status == 401, forged


async def test_login_takes_json_only(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    async with gw.http().post("/admin/session", data={"token": ADMIN}) as resp:  # a form post
        assert resp.status == 415
        assert "set-cookie" not in resp.headers
    async with gw.http().post(
        "/admin/session", data=b"[1", headers={"content-type": "application/json"}
    ) as resp:
        assert resp.status == 400


async def test_console_and_api_are_off_without_admin_tokens(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path, admin_tokens=[])
    for path in ("/ui/", "/ui/app.js", "/admin/pool"):
        async with gw.http().get(path) as resp:
            assert resp.status == 404, path
    async with gw.http().post("/admin/session", json={"token": ADMIN}) as resp:
        assert resp.status == 404


async def test_ui_files_are_served_with_a_strict_policy(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    async with gw.http().get("/ui", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["location"] == "/ui/"
    async with gw.http().get("/ui/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
        assert "uPlot" in await resp.text()
    for path in ("/ui/../auth.py", "/ui/vendor/../../__init__.py", "/ui/nope.js"):
        async with gw.http().get(path) as resp:
            assert resp.status == 404, path


async def test_ui_polling_is_not_recorded(gateway, fake_upstream, tmp_path):
    a, b, gw = await start(gateway, fake_upstream, tmp_path)
    for _ in range(3):
        await admin_get(gw, "/admin/pool")
    await gw.openai(CLIENT).chat.completions.create(model="only-b", messages=MESSAGES)
    rows = await recorded(gw, 1)
    await wait_for(lambda: _false(), timeout=0.3)
    rows = await recorded(gw, 1)
    assert [r["endpoint"] for r in rows] == ["/v1/chat/completions"]


async def _false() -> bool:
    return False


def test_a_session_ends_at_its_expiry_and_with_its_token():
    from apex_ai_proxy import console_session as s

    value = s.open_session("admin-1", b"token-one", now=1000.0)
    assert s.verify_session(value, b"token-one", now=1000.0 + s.LIFETIME_S - 1)
    assert not s.verify_session(value, b"token-one", now=1000.0 + s.LIFETIME_S)
    assert not s.verify_session(value, b"another-token", now=1001.0)  # the token was replaced
    assert s.csrf_token(value, b"token-one") != s.csrf_token(value, b"another-token")
