"""Anthropic Messages API: `x-api-key` + `anthropic-version`, /v1/messages."""

from __future__ import annotations

from apex_ai_proxy.config import ProviderConfig
from apex_ai_proxy.providers.base import ApiKey, ProviderAdapter

DEFAULT_VERSION = "2023-06-01"


class AnthropicAdapter(ProviderAdapter):
    kind = "anthropic"
    dialect = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        if not config.api_version:
            # Only a default: a same-dialect client's own anthropic-version replaces it, since the
            # relayed bytes follow that version.
            self.static_headers["anthropic-version"] = DEFAULT_VERSION

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        headers = {"x-api-key": key.secret}
        if self.config.api_version:  # configured explicitly: it wins over the client's
            headers["anthropic-version"] = self.config.api_version
        return headers

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return base_url + "/v1/messages"

    def count_tokens_url(self, base_url: str, upstream_model: str) -> str:
        return base_url + "/v1/messages/count_tokens"

    def count_tokens_body(self, body: dict, upstream_model: str) -> dict:
        payload = dict(body)
        payload["model"] = upstream_model
        payload.pop("stream", None)
        payload.pop("max_tokens", None)  # the count endpoint refuses it
        return payload
