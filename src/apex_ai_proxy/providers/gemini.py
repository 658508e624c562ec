"""Google Gemini API (v1beta generateContent): `x-goog-api-key`, the model in the path."""

from __future__ import annotations

from urllib.parse import quote

from apex_ai_proxy.providers.base import ApiKey, ProviderAdapter


class GeminiAdapter(ProviderAdapter):
    kind = "gemini"
    dialect = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        return {"x-goog-api-key": key.secret}

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        model = quote(upstream_model.removeprefix("models/"), safe="")
        if stream:
            return f"{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{base_url}/v1beta/models/{model}:generateContent"

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return None

    count_tokens_field = "totalTokens"

    def count_tokens_url(self, base_url: str, upstream_model: str) -> str:
        model = quote(upstream_model.removeprefix("models/"), safe="")
        return f"{base_url}/v1beta/models/{model}:countTokens"

    def count_tokens_body(self, body: dict, upstream_model: str) -> dict:
        """The model travels in the URL; a `generateContentRequest` names the upstream's."""
        payload = {k: v for k, v in body.items() if k not in ("model", "stream")}
        inner = payload.get("generateContentRequest")
        if isinstance(inner, dict):
            model = upstream_model.removeprefix("models/")
            payload["generateContentRequest"] = {**inner, "model": f"models/{model}"}
        return payload

    def prepare_chat_body(self, body: dict, upstream_model: str, stream: bool) -> dict:
        """The model travels in the URL; a body that carries one is rejected by the API."""
        body.pop("model", None)
        body.pop("stream", None)
        return body
