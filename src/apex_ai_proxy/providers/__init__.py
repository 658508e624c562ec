"""Provider adapters, one module per kind; `build_adapter` picks the class for a config entry."""

from __future__ import annotations

import importlib

from apex_ai_proxy.config import ProviderConfig
from apex_ai_proxy.providers.base import ProviderAdapter

# kind -> "module:Class"; imported on first use so a kind's module loads only when configured.
ADAPTERS = {
    "openai": "apex_ai_proxy.providers.openai:OpenAIAdapter",
    "azure": "apex_ai_proxy.providers.azure:AzureAdapter",
    "anthropic": "apex_ai_proxy.providers.anthropic:AnthropicAdapter",
    "gemini": "apex_ai_proxy.providers.gemini:GeminiAdapter",
    "responses": "apex_ai_proxy.providers.responses:ResponsesAdapter",
    "echo": "apex_ai_proxy.providers.echo:EchoAdapter",
    "cloudflare": "apex_ai_proxy.providers.cloudflare:CloudflareAdapter",
}


def adapter_class(kind: str) -> type[ProviderAdapter]:
    module_name, _, class_name = ADAPTERS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_adapter(name: str, config: ProviderConfig) -> ProviderAdapter:
    return adapter_class(config.kind)(name, config)
