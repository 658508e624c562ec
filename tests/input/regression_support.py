"""Helpers for the malformed-input regressions of issue 10 (item 5), one file per finding.

Each finding answered 500 "Internal gateway error" (OpenAI-shaped even on /v1/messages) before;
now it is a 4xx or 502 in the client's dialect, naming what is wrong.

    post_checked(gw, endpoint, body)            status, parsed body, headers; an error body is
                                                checked to be in the endpoint's dialect
    chat_body(**changes)                        the rich chat body, aimed at the Anthropic model
    messages_with_numeric_tool_result(model)    /v1/messages body whose tool result is a number
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fuzz_support import CHAT, MESSAGES, assert_error_shape
from gateway_support import MODELS


async def post_checked(gw: Any, endpoint: str, body: dict) -> tuple[int, dict, dict[str, str]]:
    status, raw, headers = await gw.post(endpoint, json.dumps(body).encode())
    assert_error_shape(endpoint, status, raw) if status >= 400 else None
    return status, orjson.loads(raw), headers


def chat_body(**changes: Any) -> dict:
    body = json.loads(json.dumps(CHAT))
    body["model"] = MODELS["anthropic"]
    body.update(changes)
    return body


def messages_with_numeric_tool_result(model: str) -> dict:
    body = json.loads(json.dumps(MESSAGES))
    body["model"] = model
    body["messages"][2]["content"][0]["content"] = 42
    return body
