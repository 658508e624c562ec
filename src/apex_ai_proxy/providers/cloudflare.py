"""`kind: cloudflare`: through Cloudflare AI Gateway, as the original Worker's mode 1 did.

    compat (default)    POST {base}/v1/{account_id}/{gateway_id}/compat/chat/completions
                        OpenAI Chat dialect; the body's model is "{provider}/{model}"
                        (`openai/gpt-4o-mini`, `google-ai-studio/gemini-2.0-flash`, …)
    native: anthropic   POST {base}/v1/{account_id}/{gateway_id}/anthropic/v1/messages
                        Anthropic dialect, so Anthropic clients stay on the same-dialect path

`base` is https://gateway.ai.cloudflare.com unless `base_url` says otherwise. The gateway token
(`gateway_token`) travels in `cf-aig-authorization: Bearer …` on every request. Provider keys
are optional: without any, no provider credential is sent and the gateway uses the keys stored
at Cloudflare (BYOK); with keys, they go as the provider expects (`authorization: Bearer` on
compat, `x-api-key` on the Anthropic path) and rotate like any other provider's keys.
Embeddings are not routed through the gateway (the compat endpoint documents chat only).
"""

from __future__ import annotations

from urllib.parse import quote

from apex_ai_proxy.config import ProviderConfig
from apex_ai_proxy.providers.anthropic import DEFAULT_VERSION
from apex_ai_proxy.providers.base import ApiKey, ProviderAdapter

GATEWAY_HOST = "https://gateway.ai.cloudflare.com"


class CloudflareAdapter(ProviderAdapter):
    kind = "cloudflare"
    dialect = "openai_chat"
    default_base_url = GATEWAY_HOST

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        self.native = config.native
        if self.native == "anthropic":
            self.dialect = "anthropic"  # per instance: the same kind serves two dialects
            if not config.api_version:
                self.static_headers["anthropic-version"] = DEFAULT_VERSION
        account = quote(config.account_id or "", safe="")
        gateway = quote(config.gateway_id or "", safe="")
        self._gateway_path = f"/v1/{account}/{gateway}"
        self._gateway_auth = (
            {"cf-aig-authorization": f"Bearer {config.gateway_token}"}
            if config.gateway_token
            else {}
        )

    def keys_from(self, secrets: list[str], prefix: str | None = None) -> list[ApiKey]:
        if not secrets:  # BYOK: one credential-less unit, so the route is not skipped
            return [ApiKey(f"{prefix or self.name}#byok", "")]
        return super().keys_from(secrets, prefix)

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        headers = dict(self._gateway_auth)
        if key.secret and self.native == "anthropic":
            headers["x-api-key"] = key.secret
        elif key.secret:
            headers["authorization"] = f"Bearer {key.secret}"
        if self.native == "anthropic" and self.config.api_version:
            headers["anthropic-version"] = self.config.api_version
        return headers

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        if self.native == "anthropic":
            return f"{base_url}{self._gateway_path}/anthropic/v1/messages"
        return f"{base_url}{self._gateway_path}/compat/chat/completions"

    def prepare_chat_body(self, body: dict, upstream_model: str, stream: bool) -> dict:
        body["model"] = upstream_model
        if stream and self.native is None:
            options = body.get("stream_options")
            if not isinstance(options, dict):
                body["stream_options"] = {"include_usage": True}
            elif "include_usage" not in options:
                options["include_usage"] = True
        return body
