"""`kind: responses`: an upstream that speaks OpenAI's Responses API natively ({base}/responses).

Responses clients reach it on the same-dialect path (bytes relayed); clients of other dialects
through translation. Input items the gateway made itself (ids with `_apx`, see
dialects/responses.py) mean nothing to the upstream: their ids are removed, and reasoning items
the upstream cannot verify (a gateway id and no OpenAI `encrypted_content`) are left out.
"""

from __future__ import annotations

from apex_ai_proxy.dialects.responses import TOKEN_PREFIX, is_gateway_id
from apex_ai_proxy.providers.base import ProviderAdapter


class ResponsesAdapter(ProviderAdapter):
    kind = "responses"
    dialect = "responses"
    default_base_url = "https://api.openai.com/v1"

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        return base_url + "/responses"

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return base_url + "/embeddings"  # the same OpenAI host serves both

    def prepare_chat_body(self, body: dict, upstream_model: str, stream: bool) -> dict:
        body["model"] = upstream_model
        items = body.get("input")
        if isinstance(items, list) and any(
            isinstance(item, dict) and is_gateway_id(item.get("id")) for item in items
        ):
            body["input"] = [clean for item in items if (clean := _foreign_item(item)) is not None]
        return body


def _foreign_item(item: object) -> object | None:
    """`item` as the upstream may see it: None when it cannot be sent at all."""
    if not isinstance(item, dict) or not is_gateway_id(item.get("id")):
        return item
    if item.get("type") == "reasoning":
        token = item.get("encrypted_content")
        if not isinstance(token, str) or token.startswith(TOKEN_PREFIX):
            return None
    return {k: v for k, v in item.items() if k != "id"}
