"""v2 `wrangler.jsonc` (+ `.dev.vars`): the Worker's Cloudflare AI Gateway mode, here.

    vars.ACCOUNT_ID, vars.GATEWAY_ID    → providers.cloudflare (compat path, OpenAI dialect) and
                                          providers.cloudflare-anthropic (native Anthropic path)
    GatewayToken (secret)               → gateway_tokens (clients sent it as their Bearer token)
                                          and both providers' gateway_token (cf-aig-authorization)
    vars.AZURE_RESOURCE, AZURE_API_VERSION → providers.azure, direct to RESOURCE.openai.azure.com
    vars.AEPIPE_BASE_URL, AepipeToken   → records.sinks: an http sink in aepipe format (+ sqlite)

`model#provider` needs no models section: the Cloudflare provider slugs (`gpt-5.5#openai`,
`gemini-2.0-flash#google-ai-studio`) pick these providers (providers/slugs.py).
"""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.migrate.literals import parse_literal
from apex_ai_proxy.migrate.plan import DEFAULT_AZURE_API_VERSION, Migration, MigrationError, plain

SECRET_VARS = {"GatewayToken": "GATEWAY_TOKEN", "AepipeToken": "AEPIPE_TOKEN"}


def convert(source: str, dev_vars: str | None, api_version: str | None) -> Migration:
    data = parse_literal(source, "wrangler.jsonc")
    if not isinstance(data, dict):
        raise MigrationError("expected a wrangler.jsonc object or a wrangler-config.js")
    variables = data.get("vars")
    if not isinstance(variables, dict):
        raise MigrationError(
            "no `vars` section: neither a v2 wrangler.jsonc nor a v1 wrangler-config.js "
            "(which would have `providerConfig` and `modelProviderConfig`)"
        )
    if "MODEL_PROVIDER_CONFIG" in variables or "AZURE_CONFIGS" in variables:
        raise MigrationError(
            "this is the Worker's first format (vars.MODEL_PROVIDER_CONFIG / AZURE_CONFIGS), "
            "which the import does not read; write apex.yaml by hand (README)"
        )
    account, gateway = _required(variables, "ACCOUNT_ID"), _required(variables, "GATEWAY_ID")
    secrets = parse_dev_vars(dev_vars) if dev_vars is not None else {}
    plan = Migration("v2")
    token = plan.secret("GATEWAY_TOKEN", secrets.get("GatewayToken", ""))
    plan.config["gateway_tokens"] = [token]
    gateway_fields = {"account_id": account, "gateway_id": gateway, "gateway_token": token}
    providers: dict[str, Any] = {
        "cloudflare": {"kind": "cloudflare", **gateway_fields},
        "cloudflare-anthropic": {"kind": "cloudflare", "native": "anthropic", **gateway_fields},
    }
    resource = _optional(variables, "AZURE_RESOURCE")
    if resource:
        providers["azure"] = {
            "kind": "azure",
            "base_url": f"https://{resource}.openai.azure.com",
            "api_version": _optional(variables, "AZURE_API_VERSION")
            or api_version
            or DEFAULT_AZURE_API_VERSION,
            "api_key": "${AZURE_API_KEY:-}",
        }
        plan.env.setdefault("AZURE_API_KEY", "")
        plan.notes.append(
            "providers.azure: the Worker reached Azure through the gateway with the key stored "
            "at Cloudflare; this goes to Azure directly and needs AZURE_API_KEY"
        )
    plan.config["providers"] = providers
    plan.config["models"] = {}
    if not secrets.get("GatewayToken"):
        plan.notes.append(
            "GATEWAY_TOKEN: its value lives in Cloudflare's Secrets Store (GatewayToken); "
            "set it before starting (or pass --dev-vars)"
        )
    aepipe = _optional(variables, "AEPIPE_BASE_URL")
    if aepipe:
        _aepipe(plan, aepipe, secrets.get("AepipeToken", ""))
    return plan


def _aepipe(plan: Migration, base_url: str, token: str) -> None:
    """The Worker's reporter: every request to aepipe project `apex-ai-proxy`, structured rows in
    logstore `requests`, full headers and bodies in `raw`. Here the same, through the http sink's
    aepipe format; the local SQLite sink stays (`logs`, `stats` read it)."""
    ref = plan.secret("AEPIPE_TOKEN", token)
    aepipe_sink = {
        "type": "http",
        "format": "aepipe",
        "base_url": base_url,
        "token": ref,
        "project": "apex-ai-proxy",
        "logstore": "requests",
        "raw_logstore": "raw",
    }
    plan.config["records"] = {"raw": True, "sinks": [{"type": "sqlite"}, aepipe_sink]}
    plan.notes.append(
        "records: raw capture is on because the Worker sent full request and response bodies "
        "to aepipe's `raw` logstore; set `raw: false` to send only the request records"
    )
    if not token:
        plan.notes.append(
            "AEPIPE_TOKEN: its value lives in Cloudflare's Secrets Store (AepipeToken, aepipe's "
            "ADMIN_TOKEN); set it before starting (or pass --dev-vars), or remove the http sink"
        )


def parse_dev_vars(text: str) -> dict[str, str]:
    """`.dev.vars` (dotenv): NAME=value lines, `#` comments, optional quotes around values."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[name.strip()] = value
    return found


def _required(variables: dict[str, Any], name: str) -> str:
    value = _optional(variables, name)
    if not value:
        raise MigrationError(f"vars.{name}: missing or empty (the Worker needs it too)")
    return value


def _optional(variables: dict[str, Any], name: str) -> str:
    value = variables.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MigrationError(f"vars.{name}: expected a string")
    return plain(value.strip(), f"vars.{name}")
