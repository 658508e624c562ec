"""Allowlist, header parsing and address checks (no traffic leaves 127.0.0.0/8)."""

import pytest
from pydantic import ValidationError

from apex_ai_proxy.passthrough import (
    InvalidPassthroughHeader,
    PassthroughConfig,
    PassthroughRefused,
    address_refusal,
    check_api_type,
    parse_target,
    resolve_target,
)


def config(*entries, **kw) -> PassthroughConfig:
    return PassthroughConfig(enabled=True, allow=list(entries), **kw)


CFG = config(
    {"host": "zenmux.ai"},
    {"host": "*.example.com"},
    {"host": "plain.test", "allow_http": True},
    {"host": "ports.test", "ports": [8443, 9000]},
    {"host": "2001:db8::1"},
    {"host": "metadata.google.internal", "allow_private": True, "allow_http": True},
)


def test_target_url_joins_base_path_and_request_path():
    target, _ = parse_target("zenmux.ai/api", CFG)
    assert (target.scheme, target.host, target.port, target.base_path) == (
        "https",
        "zenmux.ai",
        443,
        "/api",
    )
    assert target.url("/v1/chat/completions") == "https://zenmux.ai/api/v1/chat/completions"


def test_trailing_slash_and_no_path():
    assert parse_target("zenmux.ai/api/", CFG)[0].base_path == "/api"
    assert parse_target("zenmux.ai", CFG)[0].url("/v1/models") == "https://zenmux.ai/v1/models"


@pytest.mark.parametrize("value", ["ZenMux.AI/api", "zenmux.ai./api", "https://zenmux.ai/api"])
def test_host_normalisation(value):
    assert parse_target(value, CFG)[0].host == "zenmux.ai"


@pytest.mark.parametrize("host", ["sub.example.com", "a.b.example.com", "SUB.Example.COM."])
def test_wildcard_matches_subdomains(host):
    assert parse_target(host, CFG)[0].host == host.lower().rstrip(".")


@pytest.mark.parametrize("host", ["example.com", "evilexample.com", "example.com.evil.net"])
def test_wildcard_does_not_match_apex_or_lookalikes(host):
    with pytest.raises(PassthroughRefused, match="not on the passthrough allowlist"):
        parse_target(host, CFG)


def test_unlisted_host_is_refused_with_403():
    with pytest.raises(PassthroughRefused) as info:
        parse_target("api.openai.com/v1", CFG)
    assert info.value.status == 403
    assert not isinstance(info.value, InvalidPassthroughHeader)


@pytest.mark.parametrize(
    "value",
    [
        "user:pass@zenmux.ai/api",
        "zenmux.ai@evil.com",
        "zenmux.ai/api?x=1",
        "zenmux.ai/api#frag",
        "zenmux.ai\\@evil.com",
        "zenmux.ai/a b",
        "zenmux.ai/%2e%2e/x",
        "zenmux.ai/../x",
        "zenmux.ai:0",
        "zenmux.ai:65536",
        "zenmux.ai:-1",
        "zenmux.ai:443x",
        "zenmux.ai:",
        "ftp://zenmux.ai",
        "",
        "2001:db8::1",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[not-ipv6]",
        "2130706433",
        "0x7f.1",
    ],
)
def test_malformed_header_is_400(value):
    with pytest.raises(InvalidPassthroughHeader) as info:
        parse_target(value, CFG)
    assert info.value.status == 400


def test_ipv6_literal_in_brackets():
    target, _ = parse_target("[2001:DB8:0::1]/v1", CFG)
    assert target.host == "2001:db8::1"
    assert target.url("/x") == "https://[2001:db8::1]/v1/x"


def test_http_needs_allow_http():
    with pytest.raises(PassthroughRefused, match="plain http"):
        parse_target("http://zenmux.ai/api", CFG)
    target, _ = parse_target("http://plain.test/api", CFG)
    assert target.url("/v1") == "http://plain.test/api/v1"


def test_without_ports_only_the_default_port_is_allowed():
    with pytest.raises(PassthroughRefused, match="port 8443"):
        parse_target("zenmux.ai:8443", CFG)
    assert parse_target("zenmux.ai:443", CFG)[0].port == 443
    assert parse_target("ports.test:9000", CFG)[0].url("/") == "https://ports.test:9000/"
    with pytest.raises(PassthroughRefused, match="port 443"):
        parse_target("ports.test", CFG)


def test_metadata_hostname_refused_even_when_allowlisted():
    with pytest.raises(PassthroughRefused, match="metadata"):
        parse_target("http://metadata.google.internal/computeMetadata/v1", CFG)


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "address"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
    ],
)
def test_non_public_addresses_are_refused(address, reason):
    refusal = address_refusal(address, allow_private=False)
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize("address", ["8.8.8.8", "104.18.1.1", "2606:4700::1111"])
def test_public_addresses_pass(address):
    assert address_refusal(address, allow_private=False) is None


def test_allow_private_never_allows_metadata():
    assert address_refusal("10.0.0.1", allow_private=True) is None
    assert address_refusal("127.0.0.1", allow_private=True) is None
    assert "metadata" in address_refusal("169.254.169.254", allow_private=True)
    assert "metadata" in address_refusal("fd00:ec2::254", allow_private=True)


async def test_name_resolving_to_loopback_is_refused_without_allow_private():
    cfg = config({"host": "localhost", "allow_http": True})
    with pytest.raises(PassthroughRefused, match="loopback"):
        await resolve_target("http://localhost/v1", cfg)


async def test_resolved_target_pins_checked_addresses():
    cfg = config({"host": "localhost", "allow_http": True, "allow_private": True, "ports": [81]})
    target = await resolve_target("http://localhost:81/v1", cfg)
    assert target.addresses
    assert {a["host"] for a in target.addresses} <= {"127.0.0.1", "::1"}
    assert all(a["hostname"] == "localhost" and a["port"] == 81 for a in target.addresses)


async def test_metadata_ip_refused_before_any_connection():
    cfg = config({"host": "169.254.169.254", "allow_http": True, "allow_private": True})
    with pytest.raises(PassthroughRefused, match="metadata"):
        await resolve_target("http://169.254.169.254/latest/meta-data", cfg)


@pytest.mark.parametrize("value", ["anthropic", "chat-completions", "Responses", None])
def test_api_type_accepted(value):
    assert check_api_type(value) == (value.lower() if value else None)


def test_unknown_api_type_is_400():
    with pytest.raises(InvalidPassthroughHeader, match="must be one of") as info:
        check_api_type("gemini")
    assert info.value.status == 400


@pytest.mark.parametrize(
    "entry",
    [
        {"host": "*"},
        {"host": "*.com*"},
        {"host": "a.*.com"},
        {"host": "*.1.2.3.4"},
        {"host": "bad host"},
        {"host": "x.test", "ports": [0]},
        {"host": "x.test", "ports": []},
        {"host": "x.test", "unknown": 1},
    ],
)
def test_config_rejects_bad_entries(entry):
    with pytest.raises(ValidationError):
        config(entry)


def test_config_rejects_unknown_keys_and_has_safe_defaults():
    with pytest.raises(ValidationError):
        PassthroughConfig(enabeld=True)
    default = PassthroughConfig()
    assert (default.enabled, default.open, default.allow) == (False, False, [])


def test_exact_entry_wins_over_wildcard():
    cfg = config({"host": "*.example.com"}, {"host": "api.example.com", "allow_http": True})
    assert parse_target("http://api.example.com", cfg)[0].scheme == "http"
    with pytest.raises(PassthroughRefused, match="plain http"):
        parse_target("http://other.example.com", cfg)
