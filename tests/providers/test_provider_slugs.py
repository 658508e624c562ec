"""Cloudflare's provider slugs after `#` pick a configured provider (providers/slugs.py)."""

from __future__ import annotations

import pytest

from apex_ai_proxy.config import parse_config
from apex_ai_proxy.errors import NotFound
from apex_ai_proxy.routing import Router

GATEWAY = {"kind": "cloudflare", "account_id": "a", "gateway_id": "g"}


def pinned(providers: dict, model: str) -> tuple[str, str]:
    target = Router(parse_config({"providers": providers}, {})).resolve(model).targets[0]
    return target.provider, target.upstream_model


def test_a_slug_picks_a_provider_by_its_usual_name() -> None:
    providers = {"gemini": {"kind": "gemini", "api_key": "k"}, "cf": GATEWAY}
    assert pinned(providers, "gemini-2.0-flash#google-ai-studio") == ("gemini", "gemini-2.0-flash")


def test_a_slug_picks_a_provider_by_kind_or_by_host_whatever_its_name() -> None:
    providers = {
        "mine": {"kind": "openai", "base_url": "https://api.x.ai/v1", "api_key": "k"},
        "corp": {
            "kind": "azure",
            "base_url": "https://r.openai.azure.com",
            "api_version": "v",
            "api_key": "k",
        },
        "other": {"kind": "openai", "base_url": "https://api.deepseek.com/v1", "api_key": "k"},
    }
    assert pinned(providers, "grok-3#grok") == ("mine", "grok-3")
    assert pinned(providers, "gpt-4o#azure-openai") == ("corp", "gpt-4o")
    assert pinned(providers, "deepseek-chat#deepseek") == ("other", "deepseek-chat")


def test_without_a_direct_provider_the_cloudflare_one_gets_provider_slash_model() -> None:
    providers = {"cf": GATEWAY, "echo": {"kind": "echo"}}
    assert pinned(providers, "command-r#cohere") == ("cf", "cohere/command-r")
    assert pinned(providers, "@cf/meta/llama-3-8b#workers-ai") == (
        "cf",
        "workers-ai/@cf/meta/llama-3-8b",
    )
    assert pinned(providers, "sonar#perplexity") == ("cf", "perplexity/sonar")


def test_anthropic_prefers_the_native_cloudflare_path() -> None:
    providers = {"cf": GATEWAY, "cf-anthropic": {**GATEWAY, "native": "anthropic"}}
    assert pinned(providers, "claude-opus-4.7#anthropic") == ("cf-anthropic", "claude-opus-4.7")
    assert pinned({"cf": GATEWAY}, "claude-opus-4.7#anthropic") == (
        "cf",
        "anthropic/claude-opus-4.7",
    )


def test_a_provider_named_like_the_slug_wins_and_unknown_slugs_stay_unknown() -> None:
    providers = {"openai": {"kind": "openai", "api_key": "k"}, "cf": GATEWAY}
    assert pinned(providers, "gpt-5.5#openai") == ("openai", "gpt-5.5")
    with pytest.raises(NotFound):
        pinned(providers, "x#no-such-slug")
    with pytest.raises(NotFound):
        pinned({"echo": {"kind": "echo"}}, "command-r#cohere")  # nothing can serve it
