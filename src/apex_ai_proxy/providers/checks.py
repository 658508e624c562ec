"""Config checks a provider kind needs beyond its schema, run by `config.parse_config`.

Imports nothing of the config's (it is called from there: the arguments are a `Config` and
one of its `ProviderConfig`s), nor the adapters, which import the config."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.providers.azure_urls import needs_api_version


def kind_problems(config: Any, name: str, provider: Any) -> list[str]:
    """What a kind needs that the schema cannot say (azure URL forms, the cloudflare gateway)."""
    path = f"providers.{name}"
    problems = []
    if provider.kind == "azure":
        urls = [provider.base_url or ""] + [
            e.base_url
            for m in config.models.values()
            for e in m.providers
            if e.provider == name and e.base_url
        ]
        if not provider.api_version and any(needs_api_version(u) for u in urls):
            problems.append(f"{path}.api_version: required for kind 'azure' (except /openai/v1)")
        if not provider.resource and any(":name" in u for u in urls):
            problems.append(f"{path}.resource: required when a base_url contains ':name'")
    only = {"resource": "azure", "account_id": "cloudflare", "gateway_id": "cloudflare"}
    only |= {"gateway_token": "cloudflare", "native": "cloudflare"}
    for field, kind in only.items():
        if getattr(provider, field) is not None and provider.kind != kind:
            problems.append(
                f"{path}.{field}: only for kind '{kind}' (this one is '{provider.kind}')"
            )
    if provider.kind == "cloudflare":
        for field in ("account_id", "gateway_id"):
            if not getattr(provider, field):
                problems.append(f"{path}.{field}: required for kind 'cloudflare'")
    return problems
