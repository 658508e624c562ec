"""Azure OpenAI: deployments in the path, api-version in the query, `api-key` header."""

from __future__ import annotations

from urllib.parse import quote

from apex_ai_proxy.providers.base import ApiKey
from apex_ai_proxy.providers.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    kind = "azure"
    default_base_url = None

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        return {"api-key": key.secret}

    def _deployment_url(self, base_url: str, deployment: str, operation: str) -> str:
        version = quote(self.config.api_version or "", safe="")
        return f"{base_url}/openai/deployments/{quote(deployment, safe='')}/{operation}?api-version={version}"

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return self._deployment_url(base_url, upstream_model, "chat/completions")

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return self._deployment_url(base_url, upstream_model, "embeddings")
