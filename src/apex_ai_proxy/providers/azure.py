"""Azure OpenAI: `api-key` header; the deployment and api-version where each URL form wants them.

A `base_url` (the provider's, or a model entry's) takes one of four forms:

    https://RES.openai.azure.com                      classic: {base}/openai/deployments/{model}/
                                                      chat/completions?api-version=V
    https://RES.openai.azure.com/openai/v1            v1 API: {base}/chat/completions, the model
                                                      in the body, no api-version
    https://RES.openai.azure.com/openai/deployments/D names its deployment (or any other path,
                                                      e.g. …services.ai.azure.com/models): used as
                                                      is, {base}/chat/completions?api-version=V
    https://:name.azure.com/openai/deployments/:model the Worker's template: `:name` becomes the
                                                      provider's `resource`, `:model` the entry's
                                                      upstream model, then used as is
"""

from __future__ import annotations

from urllib.parse import quote

from apex_ai_proxy.providers.azure_urls import url_form
from apex_ai_proxy.providers.base import ApiKey
from apex_ai_proxy.providers.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    kind = "azure"
    default_base_url = None

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        return {"api-key": key.secret}

    def _url(self, base_url: str, deployment: str, operation: str) -> str:
        base_url = self._fill_template(base_url, deployment)
        form = url_form(base_url)
        if form == "v1":
            return f"{base_url}/{operation}"
        version = quote(self.config.api_version or "", safe="")
        if form == "classic":
            root = base_url.removesuffix("/openai")
            base_url = f"{root}/openai/deployments/{quote(deployment, safe='')}"
        return f"{base_url}/{operation}?api-version={version}"

    def _fill_template(self, base_url: str, deployment: str) -> str:
        if ":model" in base_url:
            base_url = base_url.replace(":model", quote(deployment, safe=""))
        if ":name" in base_url and self.config.resource:
            base_url = base_url.replace(":name", self.config.resource)
        return base_url.rstrip("/")

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return self._url(base_url, upstream_model, "chat/completions")

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return self._url(base_url, upstream_model, "embeddings")
