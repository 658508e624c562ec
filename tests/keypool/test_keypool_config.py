"""`limits:` on providers, keys and model entries, and the `state:` section: merging, and what
`check` says about hostile values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apex_ai_proxy.config import ConfigError, parse_config
from apex_ai_proxy.health import effective_health
from apex_ai_proxy.keypool import effective_state, open_ledger
from apex_ai_proxy.keypool.config import Limits, resolve_limits
from apex_ai_proxy.keypool.ledger import LocalLedger
from apex_ai_proxy.keypool.limits import day_window

SECRET = "sk-very-secret-key-0001"


def config_with(limits: object, where: str = "key") -> dict:
    provider: dict = {"kind": "openai", "base_url": "http://127.0.0.1:9", "api_keys": [SECRET]}
    entry: dict = {"provider": "p"}
    if where == "key":
        provider["api_keys"] = [{"key": SECRET, "limits": limits}]
    elif where == "provider":
        provider["limits"] = limits
    else:
        entry["limits"] = limits
    return {"providers": {"p": provider}, "models": {"m": {"providers": [entry]}}}


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env={})
    return caught.value.problems


def test_the_most_specific_level_wins_field_by_field():
    provider = Limits(rpm=10, rpd=250, reset_timezone="America/Los_Angeles")
    key = Limits(rpm=15)
    entry = Limits(tpm=5000)
    merged = resolve_limits(provider, key, entry)
    assert merged == Limits(rpm=15, rpd=250, tpm=5000, reset_timezone="America/Los_Angeles")
    assert resolve_limits(None, None, None).is_empty


def test_limits_load_from_every_level_and_plain_keys_still_work():
    raw = config_with({"rpm": 3}, "key")
    raw["providers"]["p"]["limits"] = {"rpd": 100, "reset_timezone": "America/Los_Angeles"}
    raw["providers"]["p"]["api_keys"].append("sk-plain-second-key")
    raw["providers"]["p"]["api_keys"].append("")  # an unset ${VAR:-}: left out
    raw["models"]["m"]["providers"][0]["limits"] = {"max_parallel": 2}
    config = parse_config(raw, env={})
    provider = config.providers["p"]
    assert provider.keys() == [SECRET, "sk-plain-second-key"]
    assert [limits for _, limits in provider.keys_with_limits()] == [Limits(rpm=3), None]
    assert SECRET in config.secrets()
    entry = config.models["m"].providers[0]
    merged = resolve_limits(provider.limits, provider.keys_with_limits()[0][1], entry.limits)
    assert (merged.rpm, merged.rpd, merged.max_parallel) == (3, 100, 2)


@pytest.mark.parametrize("where", ["key", "provider", "entry"])
@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"rpm": -1}, "greater than or equal to 1"),
        ({"rpm": 0}, "greater than or equal to 1"),
        ({"tpd": 10**13}, "less than or equal to"),
        ({"rpm": "10"}, "valid integer"),
        ({"rpm": True}, "valid integer"),
        ({"tpm": 1.5}, "valid integer"),
        ({"rpm": None, "max_parallel": 10**9}, "less than or equal to"),
        ({"reset_timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"reset_timezone": "../../../etc/passwd"}, "unknown time zone"),
        ({"reset_timezone": "x" * 500}, "at most 64 characters"),
        ({"rpn": 10}, "Extra inputs are not permitted"),
        ([10, 20], "valid dictionary"),
    ],
)
def test_hostile_limits_are_refused_with_their_path(where, limits, message):
    found = problems(config_with(limits, where))
    prefix = {
        "key": "providers.p.api_keys[0].limits",
        "provider": "providers.p.limits",
        "entry": "models.m.providers[0].limits",
    }[where]
    assert any(p.startswith(prefix) and message in p for p in found), found
    assert not any(SECRET in p for p in found)


def test_a_rejected_key_entry_never_shows_the_key():
    raw = config_with({"rpm": 1}, "key")
    raw["providers"]["p"]["api_keys"] = [{"key": SECRET, "limit": {"rpm": 1}}, 12345]
    found = problems(raw)
    assert any(p.startswith("providers.p.api_keys[0].limit:") for p in found), found
    assert any(p.startswith("providers.p.api_keys[1]:") for p in found), found
    assert not any(SECRET in p for p in found)


def test_state_section_is_validated_and_never_shows_a_password():
    raw = config_with({"rpm": 1})
    raw["state"] = {
        "backend": "memcached",
        "redis_url": "http://user:hunter2@h:1",
        "key_prefix": "",
    }
    found = problems(raw)
    assert any(p.startswith("state.backend:") for p in found)
    assert any(p.startswith("state.redis_url:") for p in found)
    assert any(p.startswith("state.key_prefix:") for p in found)
    assert not any("hunter2" in p for p in found)


def test_without_a_state_section_the_pool_follows_health():
    raw = config_with({"rpm": 1})
    raw["health"] = {
        "backend": "redis",
        "redis_url": "redis://127.0.0.1:6390",
        "key_prefix": "x:h:",
    }
    state = effective_state(parse_config(raw, env={}))
    assert (state.backend, state.redis_url, state.key_prefix) == (
        "redis",
        "redis://127.0.0.1:6390",
        "x:h:pool:",
    )
    raw["state"] = {"backend": "local"}
    config = parse_config(raw, env={})
    assert effective_state(config).backend == "local"
    assert isinstance(open_ledger(effective_state(config)), LocalLedger)


def test_a_state_section_holds_key_health_too_unless_health_is_given():
    raw = config_with({"rpm": 1})
    raw["state"] = {"backend": "redis", "redis_url": "redis://127.0.0.1:6391", "key_prefix": "s:"}
    health = effective_health(parse_config(raw, env={}))
    assert (health.backend, health.redis_url, health.key_prefix) == (
        "redis",
        "redis://127.0.0.1:6391",
        "s:health:",
    )
    raw["health"] = {"backend": "local"}  # today's configs keep what they say
    assert effective_health(parse_config(raw, env={})).backend == "local"


@pytest.mark.parametrize(
    ("day", "hours"),
    [((2026, 12, 2), 24), ((2026, 3, 8), 23), ((2026, 11, 1), 25)],
)
def test_a_los_angeles_day_ends_at_its_midnight_across_dst(day, hours):
    noon_utc = datetime(*day, 20, tzinfo=UTC).timestamp()  # noon in Los Angeles
    start, end = day_window(noon_utc, "America/Los_Angeles")
    assert end - start == hours * 3600
    assert datetime.fromtimestamp(end, UTC).hour in (7, 8)  # midnight PST or PDT
    utc_start, utc_end = day_window(noon_utc, None)
    assert datetime.fromtimestamp(utc_start, UTC).hour == 0 and utc_end - utc_start == 86400
