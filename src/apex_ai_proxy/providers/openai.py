"""OpenAI and every OpenAI-compatible host (DeepSeek, Groq, Mistral, OpenRouter, vLLM, …)."""

from __future__ import annotations

from apex_ai_proxy.providers.base import ProviderAdapter


class OpenAIAdapter(ProviderAdapter):
    kind = "openai"
    dialect = "openai_chat"
    default_base_url = "https://api.openai.com/v1"

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return base_url + "/chat/completions"

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return base_url + "/embeddings"

    def prepare_chat_body(self, body: dict, upstream_model: str, stream: bool) -> dict:
        body["model"] = upstream_model
        if stream:
            # Ask for the usage chunk so records and translated streams can report tokens.
            options = body.get("stream_options")
            if not isinstance(options, dict):
                body["stream_options"] = {"include_usage": True}
            elif "include_usage" not in options:
                options["include_usage"] = True
        return body
