from __future__ import annotations

import orjson

from apex_ai_proxy.telemetry import RawRecord, Redactor
from apex_ai_proxy.telemetry.redact import REDACTED, SENSITIVE_HEADERS

PROVIDER_KEY = "sk-proj-PROVIDERKEY0123456789"
GATEWAY_TOKEN = "apx-GATEWAYTOKEN-abcdef"


def test_every_credential_header_is_redacted_whatever_its_case() -> None:
    names = [
        "authorization",
        "X-API-KEY",
        "Api-Key",
        "x-goog-api-key",
        "CF-AIG-Authorization",
        "x-apex-ai-proxy-token",
        "cookie",
        "SET-COOKIE",
    ]
    assert {n.lower() for n in names} == SENSITIVE_HEADERS
    headers = {name: f"value-of-{name}" for name in names} | {"Content-Type": "application/json"}
    redacted = Redactor().redact_headers(headers)
    assert redacted == {name: REDACTED for name in names} | {"Content-Type": "application/json"}


def test_repeated_headers_from_a_list_of_pairs_are_kept_and_redacted() -> None:
    pairs = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Via", "x"), ("Via", "y")]
    assert Redactor().redact_headers(pairs) == {"Set-Cookie": REDACTED, "Via": "x, y"}


def test_configured_secrets_are_replaced_in_header_values_and_bodies() -> None:
    redactor = Redactor([PROVIDER_KEY, GATEWAY_TOKEN])
    raw = redactor.redact_raw(
        RawRecord(
            request_headers={"X-Forwarded-Auth": f"token={GATEWAY_TOKEN}"},
            request_body=orjson.dumps({"messages": [{"content": f"my key is {PROVIDER_KEY}"}]}),
            response_headers={"X-Echo": PROVIDER_KEY},
            response_body=f'{{"error": "bad key {PROVIDER_KEY}"}}',
        )
    )
    text = orjson.dumps(raw.to_dict()).decode()
    assert PROVIDER_KEY not in text and GATEWAY_TOKEN not in text
    assert raw.request_headers == {"X-Forwarded-Auth": f"token={REDACTED}"}
    assert raw.request_body == f'{{"messages":[{{"content":"my key is {REDACTED}"}}]}}'
    assert raw.response_headers == {"X-Echo": REDACTED}


def test_a_secret_that_prefixes_another_does_not_leave_the_tail_behind() -> None:
    short, long = "sk-abcdef", "sk-abcdef-and-more"
    assert Redactor([short, long]).scrub(f"{long} {short}") == f"{REDACTED} {REDACTED}"


def test_short_secrets_are_ignored_rather_than_shredding_the_record() -> None:
    assert Redactor(["a", "ab12"]).scrub("a banana ab12") == "a banana ab12"


def test_pattern_is_rebuilt_only_when_the_set_of_secrets_changes() -> None:
    redactor = Redactor([PROVIDER_KEY])
    pattern = redactor._pattern
    redactor.set_secrets([PROVIDER_KEY])
    assert redactor._pattern is pattern
    redactor.set_secrets([PROVIDER_KEY, GATEWAY_TOKEN])
    assert redactor._pattern is not pattern
    assert redactor.scrub(GATEWAY_TOKEN) == REDACTED
    redactor.set_secrets([])
    assert redactor.scrub(GATEWAY_TOKEN) == GATEWAY_TOKEN


def test_body_over_the_limit_is_capped_and_marked() -> None:
    body = b"x" * 100
    assert Redactor(body_limit=10).redact_body(body) == "xxxxxxxxxx[truncated: 100 bytes]"
    assert Redactor(body_limit=100).redact_body(body) == "x" * 100


def test_secret_straddling_the_cut_is_redacted_not_half_kept() -> None:
    body = ("a" * 8 + PROVIDER_KEY + "b" * 50).encode()
    capped = Redactor([PROVIDER_KEY], body_limit=12).redact_body(body)
    assert capped == f"aaaaaaaa{REDACTED}[truncated: {len(body)} bytes]"
    assert "sk-p" not in capped


def test_secret_after_the_cut_leaves_no_prefix_when_earlier_replacements_shorten_text() -> None:
    long_secret = "L" * 60
    body = (long_secret + "." + PROVIDER_KEY).encode()
    capped = Redactor([long_secret, PROVIDER_KEY], body_limit=62).redact_body(body)
    assert capped is not None
    assert "sk-" not in capped and "LLLL" not in capped
    assert capped.startswith(f"{REDACTED}.")


def test_multibyte_text_cut_mid_character_stays_valid_text() -> None:
    capped = Redactor(body_limit=5).redact_body("ééé".encode())  # 6 bytes
    assert (
        capped is not None and capped.startswith("éé") and capped.endswith("[truncated: 6 bytes]")
    )
