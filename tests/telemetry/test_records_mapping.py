"""Model mapping in routed mode (header and config): what the upstream gets and what the record
says was requested and mapped."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from records_gateway_support import MESSAGES, TOKEN, provider, records, records_section

from apex_ai_proxy.routing.mapping import MAPPING_HEADER


async def start(gateway, fake_upstream, tmp_path: Path, **top):
    alpha, beta = await fake_upstream("alpha"), await fake_upstream("beta")
    gw = await gateway(
        {
            "gateway_tokens": [TOKEN],
            "providers": {
                "alpha": provider(alpha.base_url, "sk-alpha-key-0000"),
                "beta": provider(beta.base_url, "sk-beta-key-0000"),
            },
            "models": {
                "big": {
                    "strategy": "round-robin",
                    "providers": [
                        {"provider": "alpha", "model": "big-on-alpha"},
                        {"provider": "beta", "model": "big-on-beta"},
                    ],
                }
            },
            "records": records_section(tmp_path),
            **top,
        }
    )
    return gw, alpha, beta


@pytest.mark.parametrize(
    ("model", "header", "config_mapping", "mapped", "answered_by"),
    [
        pytest.param("small", "small#big", {}, "big", "alpha", id="header"),
        pytest.param("small", None, {"small": "big"}, "big", "alpha", id="config"),
        pytest.param("small#beta", "small#big", {}, "big#beta", "beta", id="header-suffix-kept"),
        pytest.param("small#beta", None, {"small": "big"}, "big#beta", "beta", id="config-suffix"),
        pytest.param("small", None, {"small": "big#beta"}, "big#beta", "beta", id="config-pins"),
        pytest.param("tiny", "mid#big", {"tiny": "mid"}, "big", "alpha", id="config-then-header"),
    ],
)
async def test_mapping_routes_the_mapped_model_and_records_both_names(
    gateway,
    fake_upstream,
    tmp_path: Path,
    model: str,
    header: str | None,
    config_mapping: dict[str, str],
    mapped: str,
    answered_by: str,
) -> None:
    gw, alpha, beta = await start(gateway, fake_upstream, tmp_path, model_mapping=config_mapping)
    headers = {MAPPING_HEADER: header} if header else {}
    raw = await gw.openai(TOKEN).chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, extra_headers=headers
    )
    assert raw.headers["x-apex-provider"] == answered_by
    upstream = {"alpha": alpha, "beta": beta}[answered_by]
    assert upstream.requests[-1].model == f"big-on-{answered_by}"

    (record,) = await records(gw, tmp_path)
    assert (record["requested_model"], record["mapped_model"], record["provider"]) == (
        model,
        mapped,
        answered_by,
    )


@pytest.mark.parametrize("header", ["small", "small#", "#big", "a#b#c", "a#b, a#c"])
async def test_a_malformed_mapping_header_is_a_400_naming_the_entry(
    gateway, fake_upstream, tmp_path: Path, header: str
) -> None:
    gw, alpha, beta = await start(gateway, fake_upstream, tmp_path)
    with pytest.raises(openai.BadRequestError) as bad:
        await gw.openai(TOKEN).chat.completions.create(
            model="big", messages=MESSAGES, extra_headers={MAPPING_HEADER: header}
        )
    bad_entry = header.split(",")[-1].strip().partition("#")[0] if "," in header else header
    assert repr(bad_entry) in bad.value.message
    assert alpha.requests == [] and beta.requests == []
    (record,) = await records(gw, tmp_path)
    assert (record["status"], record["error_type"], record["requested_model"]) == (
        400,
        "invalid_request_error",
        "big",
    )
