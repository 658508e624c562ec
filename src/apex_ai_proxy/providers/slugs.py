"""Cloudflare AI Gateway's provider slugs, accepted after `#` in `model#provider`.

Users of the original Worker type `gemini-2.0-flash#google-ai-studio` or `grok-3#grok`. When no
provider has that exact name, the slug picks a configured provider, in this order:

1. one whose name is a usual name for it (`google-ai-studio` → `gemini` or `google`);
2. one whose kind is the slug's own kind (`anthropic`, `gemini`, `azure`), or whose `base_url`
   is on the slug's host (`deepseek` → a provider on api.deepseek.com, whatever its name);
3. a `cloudflare` provider, which receives the model as "{slug}/{model}" on its compat path
   (or the bare model on its Anthropic-native path, for `anthropic`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from apex_ai_proxy.config import ProviderConfig
from apex_ai_proxy.providers import adapter_class


@dataclass(frozen=True, slots=True)
class Slug:
    names: tuple[str, ...] = ()  # our usual provider names for it
    kind: str | None = None  # a kind that means this provider and nothing else
    host: str | None = None  # its API host, matched against a provider's base_url


SLUGS: dict[str, Slug] = {
    "openai": Slug(("openai",), host="api.openai.com"),
    "anthropic": Slug(("anthropic", "claude"), kind="anthropic", host="api.anthropic.com"),
    "google-ai-studio": Slug(
        ("gemini", "google"), kind="gemini", host="generativelanguage.googleapis.com"
    ),
    "grok": Slug(("xai", "grok"), host="api.x.ai"),
    "azure-openai": Slug(("azure",), kind="azure"),
    "workers-ai": Slug(),  # only through a cloudflare provider
    "cohere": Slug(("cohere",), host="api.cohere.ai"),
    "perplexity": Slug(("perplexity", "perplexity-ai"), host="api.perplexity.ai"),
    "deepseek": Slug(("deepseek",), host="api.deepseek.com"),
    "groq": Slug(("groq",), host="api.groq.com"),
    "mistral": Slug(("mistral",), host="api.mistral.ai"),
    "openrouter": Slug(("openrouter",), host="openrouter.ai"),
    "cerebras": Slug(("cerebras",), host="api.cerebras.ai"),
    "huggingface": Slug(("huggingface", "hf")),
    "replicate": Slug(("replicate",)),
}


def resolve_slug(
    slug: str, model: str, providers: dict[str, ProviderConfig]
) -> tuple[str, str] | None:
    """(provider name, upstream model) for `model#slug`, or None when nothing matches."""
    spec = SLUGS.get(slug.lower())
    if spec is None:
        return None
    for name in spec.names:
        if name in providers:
            return name, model
    for name, provider in providers.items():
        base_url = provider.base_url or adapter_class(provider.kind).default_base_url
        if provider.kind == spec.kind or (spec.host and _host(base_url) == spec.host):
            return name, model
    return _through_cloudflare(slug.lower(), model, providers)


def _through_cloudflare(
    slug: str, model: str, providers: dict[str, ProviderConfig]
) -> tuple[str, str] | None:
    gateways = [(n, p) for n, p in providers.items() if p.kind == "cloudflare"]
    if slug == "anthropic":
        for name, provider in gateways:
            if provider.native == "anthropic":
                return name, model
    for name, provider in gateways:
        if provider.native is None:
            return name, f"{slug}/{model}"
    return None


def _host(base_url: str | None) -> str | None:
    if not base_url:
        return None
    try:
        return (urlsplit(base_url).hostname or "").lower() or None
    except ValueError:
        return None
