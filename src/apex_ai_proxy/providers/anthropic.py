"""Anthropic Messages API: `x-api-key` + `anthropic-version`, /v1/messages."""

from __future__ import annotations

from apex_ai_proxy.providers.base import ApiKey, ProviderAdapter

DEFAULT_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    kind = "anthropic"
    dialect = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        return {
            "x-api-key": key.secret,
            "anthropic-version": self.config.api_version or DEFAULT_VERSION,
        }

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return base_url + "/v1/messages"

    def count_tokens_url(self, base_url: str) -> str:
        return base_url + "/v1/messages/count_tokens"
