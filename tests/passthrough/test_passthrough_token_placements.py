"""Probe of the item-12 fix: a gateway token a client puts anywhere else an upstream reads
credentials (Gemini's `?key=` query, a tab after `Bearer`, a second Authorization header,
Cloudflare AI Gateway's `cf-aig-authorization`) must not be forwarded either."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest
from fakes.listeners import Recorder
from test_passthrough_security import TOKEN, config, head, raw_request


@pytest.fixture
async def recorder():
    fake = await Recorder().start()
    yield fake
    await fake.stop()


PLACEMENTS = {
    "query_key": ("POST /v1beta/models/m:generateContent?key={token} HTTP/1.1", ()),
    "query_key_after_other": ("POST /v1/x?alt=sse&key={token} HTTP/1.1", ()),
    "query_key_percent_encoded": ("POST /v1/x?key={token_pct} HTTP/1.1", ()),
    "bearer_tab": ("POST /v1/chat/completions HTTP/1.1", ("Authorization: Bearer\t{token}",)),
    "two_authorization": (
        "POST /v1/chat/completions HTTP/1.1",
        ("Authorization: Bearer sk-own-key-123", "Authorization: Bearer {token}"),
    ),
    "cf_aig_authorization": (
        "POST /v1/chat/completions HTTP/1.1",
        ("cf-aig-authorization: Bearer {token}",),
    ),
}


@pytest.mark.parametrize("placement", list(PLACEMENTS))
async def test_a_gateway_token_in_another_credential_place_is_not_forwarded(
    gateway, recorder, tmp_path: Path, placement: str
) -> None:
    gw = await gateway(config(tmp_path, recorder.port))
    line, extra = PLACEMENTS[placement]
    status, _ = await raw_request(
        gw.base_url,
        head(
            line.format(token=TOKEN, token_pct=TOKEN.replace("-", "%2D")),
            f"http://127.0.0.1:{recorder.port}",
            *(e.format(token=TOKEN) for e in extra),
            "Content-Length: 2",
        ),
        b"{}",
    )
    # Refused in the client's dialect, or relayed without the token: never the token upstream.
    assert status in (200, 400), (placement, status)
    for seen in recorder.seen:
        assert TOKEN not in unquote(str(seen)), (placement, status)
