"""Gateway tokens in `encrypted_content`: `apx1:` + base64url(JSON) carrying the
signatures and redacted thinking another vendor needs back verbatim."""

from __future__ import annotations

import base64

import orjson

from apex_ai_proxy.dialects.neutral import ReasoningPart
from apex_ai_proxy.dialects.responses.ids import gateway_id

TOKEN_PREFIX = "apx1:"


def reasoning_token(part: ReasoningPart) -> str | None:
    """`encrypted_content` for a reasoning part: OpenAI's own, or a gateway token, or None."""
    if part.encrypted_content:
        return part.encrypted_content
    data = {}
    if part.signature:
        data["s"] = part.signature
    if part.redacted:
        data["r"] = part.redacted
    if not data:
        return None
    return TOKEN_PREFIX + base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def call_signature_item(signature: str) -> dict:
    """A reasoning item carrying the signature of the function call that follows it (Gemini
    thoughtSignature): clients keep reasoning items with their encrypted_content, not extras."""
    token = base64.urlsafe_b64encode(orjson.dumps({"c": signature})).decode().rstrip("=")
    return {
        "id": gateway_id("rs_"),
        "type": "reasoning",
        "summary": [],
        "encrypted_content": TOKEN_PREFIX + token,
        "status": "completed",
    }


def _token_data(value: str) -> dict:
    raw = value[len(TOKEN_PREFIX) :]
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}  # a damaged token: the reasoning is sent without its signature
    return data if isinstance(data, dict) else {}


def read_token(part: ReasoningPart, value: str) -> None:
    if not value.startswith(TOKEN_PREFIX):
        part.encrypted_content = value
        return
    data = _token_data(value)
    part.signature = data.get("s") if isinstance(data.get("s"), str) else None
    part.redacted = data.get("r") if isinstance(data.get("r"), str) else None


def call_signature(item: dict) -> str | None:
    value = item.get("encrypted_content")
    if not isinstance(value, str) or not value.startswith(TOKEN_PREFIX):
        return None
    signature = _token_data(value).get("c")
    return signature if isinstance(signature, str) else None
