"""v1 `wrangler-config.js`: `providerConfig` + `modelProviderConfig` become providers and models.

    providerConfig.NAME = {base_url, api_keys: [...] | api_key}      → providers.NAME
    modelProviderConfig.ALIAS.providers[i] = {provider, model,       → models.ALIAS.providers[i]
        base_url?, api_key?, api_keys?}
    SERVICE_API_KEY                                                  → gateway_tokens

A provider is `kind: azure` when its URL is on azure.com (the Worker's `https://:name.azure.com/
openai/deployments/:model` template included); every other one is OpenAI-compatible, as it was
for the Worker. An entry naming a provider that `providerConfig` lacks, but carrying its own
`base_url`, defines that provider (the oldest Worker configs did this).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from apex_ai_proxy.migrate.literals import find_literal, parse_literal
from apex_ai_proxy.migrate.plan import DEFAULT_AZURE_API_VERSION, Migration, MigrationError, plain

PROVIDERS = "providerConfig"
MODELS = "modelProviderConfig"
ENTRY_FIELDS = {"provider", "model", "base_url", "api_key", "api_keys", "weight"}


def looks_like_v1(source: str) -> bool:
    return find_literal(source, MODELS) is not None or find_literal(source, PROVIDERS) is not None


def convert(source: str, resource: str | None, api_version: str | None) -> Migration:
    plan = Migration("v1")
    providers_raw = _object(source, PROVIDERS, required=False)
    models_raw = _object(source, MODELS, required=True)
    token = find_literal(source, "SERVICE_API_KEY")
    if token is not None:
        value = parse_literal(token, "SERVICE_API_KEY")
        if isinstance(value, str) and value:
            plan.config["gateway_tokens"] = [plan.secret("APEX_GATEWAY_TOKEN", value)]
    if "gateway_tokens" not in plan.config:
        plan.notes.append(
            "no SERVICE_API_KEY: the Worker took requests without a token; without "
            "gateway_tokens this gateway does too, but serves on loopback only"
        )
    providers: dict[str, Any] = {}
    for name, raw in providers_raw.items():
        providers[name] = _provider(plan, f"{PROVIDERS}.{name}", name, raw, resource, api_version)
    plan.config["providers"] = providers
    plan.config["models"] = {
        alias: _model(plan, alias, raw, providers, resource, api_version)
        for alias, raw in models_raw.items()
    }
    return plan


def _object(source: str, name: str, required: bool) -> dict[str, Any]:
    text = find_literal(source, name)
    if text is None:
        if required:
            raise MigrationError(f"no `{name} = {{…}}` object literal found (is this a v1 config?)")
        return {}
    value = parse_literal(text, name)
    if not isinstance(value, dict):
        raise MigrationError(f"{name}: expected an object")
    return value


def _is_azure(name: str, base_url: str) -> bool:
    host = (urlsplit(base_url.replace(":name", "name")).hostname or "").lower()
    return host.endswith(".azure.com") or (not base_url and name.lower() == "azure")


def _provider(
    plan: Migration,
    where: str,
    name: str,
    raw: Any,
    resource: str | None,
    api_version: str | None,
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MigrationError(f"{where}: expected an object")
    base_url = plain(_string(raw.get("base_url"), f"{where}.base_url"), f"{where}.base_url")
    out: dict[str, Any] = {"kind": "azure" if _is_azure(name, base_url) else "openai"}
    if base_url:
        out["base_url"] = base_url
    if out["kind"] == "azure":
        out["api_version"] = api_version or DEFAULT_AZURE_API_VERSION
        if ":name" in base_url and resource:
            out["resource"] = resource
        elif ":name" in base_url:
            out["resource"] = "${AZURE_RESOURCE}"
            plan.env.setdefault("AZURE_RESOURCE", "")
            plan.notes.append(
                f"{where}.base_url: `:name` needs your Azure resource name: set AZURE_RESOURCE "
                "(or run the import with --azure-resource NAME)"
            )
    out.update(_keys(plan, where, name, raw))
    for field in sorted(set(raw) - {"base_url", "api_key", "api_keys", "provider"}):
        plan.notes.append(f"{where}.{field}: not a v1 setting the import knows; left out")
    return out


def _keys(plan: Migration, where: str, prefix: str, raw: dict[str, Any]) -> dict[str, Any]:
    keys = []
    if raw.get("api_key") is not None:
        keys.append(_string(raw["api_key"], f"{where}.api_key"))
    listed = raw.get("api_keys")
    if listed is not None:
        if not isinstance(listed, list):
            raise MigrationError(f"{where}.api_keys: expected a list of strings")
        keys += [_string(k, f"{where}.api_keys[{i}]") for i, k in enumerate(listed)]
    keys = [k for k in keys if k]
    if len(keys) == 1:
        return {"api_key": plan.secret(f"{prefix}_API_KEY", keys[0])}
    return (
        {"api_keys": [plan.secret(f"{prefix}_API_KEY_{i + 1}", k) for i, k in enumerate(keys)]}
        if keys
        else {}
    )


def _model(
    plan: Migration,
    alias: str,
    raw: Any,
    providers: dict[str, Any],
    resource: str | None,
    api_version: str | None,
) -> dict[str, Any]:
    where = f"{MODELS}.{alias}"
    entries = raw.get("providers") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise MigrationError(f"{where}.providers: expected a non-empty list")
    out = []
    for i, entry in enumerate(entries):
        out.append(
            _entry(plan, f"{where}.providers[{i}]", alias, entry, providers, resource, api_version)
        )
    return {"providers": out}


def _entry(
    plan: Migration,
    where: str,
    alias: str,
    raw: Any,
    providers: dict[str, Any],
    resource: str | None,
    api_version: str | None,
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MigrationError(f"{where}: expected an object")
    name = _string(raw.get("provider"), f"{where}.provider")
    if not name:
        raise MigrationError(f"{where}.provider: missing")
    base_url = plain(_string(raw.get("base_url"), f"{where}.base_url"), f"{where}.base_url")
    if name not in providers:
        if not base_url:
            raise MigrationError(f"{where}.provider: '{name}' is not in {PROVIDERS}")
        provider = _provider(plan, where, name, {"base_url": base_url}, resource, api_version)
        providers[name] = provider
    out: dict[str, Any] = {"provider": name}
    model = plain(_string(raw.get("model"), f"{where}.model"), f"{where}.model")
    if model and model != alias:
        out["model"] = model
    if base_url and base_url != providers[name].get("base_url"):
        out["base_url"] = base_url
    if isinstance(raw.get("weight"), int | float) and not isinstance(raw["weight"], bool):
        out["weight"] = raw["weight"]
    out.update(_keys(plan, where, f"{name}_{model or alias}", raw))
    for field in sorted(set(raw) - ENTRY_FIELDS):
        plan.notes.append(f"{where}.{field}: not a v1 setting the import knows; left out")
    return out


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MigrationError(f"{where}: expected a string")
    return value
