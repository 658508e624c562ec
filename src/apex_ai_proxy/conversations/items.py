"""A Responses request's `input` as stored items, the create body's checks, list pages."""

from __future__ import annotations

from typing import Any

from apex_ai_proxy.dialects.responses import gateway_id
from apex_ai_proxy.errors import BadRequest

ITEM_ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


def normalize_input(value: Any) -> list[dict]:
    """The request's `input` as Responses items, each with an id (what input_items lists)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    items: list[dict] = []
    for raw in value:
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                text_type = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": text_type, "text": content}]
            item.setdefault("status", "completed")
        if not isinstance(item.get("id"), str):
            item["id"] = gateway_id(ITEM_ID_PREFIXES.get(kind, "item_"))
        items.append(item)
    return items


def validate_create(body: dict) -> None:
    items = body.get("input")
    if items is not None and not isinstance(items, str | list):
        raise BadRequest("Field 'input' must be a string or an array of items.", param="input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest("Every item of 'input' must be an object.", param="input")
            kind = item.get("type")
            if kind is not None and not isinstance(kind, str):  # it picks a stored id's prefix
                raise BadRequest(f"'input[{i}].type' must be a string.", param=f"input[{i}].type")
    for key in ("stream", "store"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise BadRequest(f"Field '{key}' must be a boolean.", param=key)
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise BadRequest(
            "Field 'previous_response_id' must be a response id.", param="previous_response_id"
        )
    if body.get("background") is True:
        raise BadRequest(
            "Background responses are not supported by this gateway; send the request without "
            "'background' and keep the connection open (stream: true shows progress).",
            param="background",
        )


def list_page(items: list[dict], query) -> dict:
    """One page of `items` in OpenAI's list shape (`limit`, `order`, `after`, `before`)."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise BadRequest("'limit' must be an integer between 1 and 100.", param="limit") from None
    if not 1 <= limit <= 100:
        raise BadRequest("'limit' must be an integer between 1 and 100.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else list(reversed(items))
    ids = [item.get("id") for item in ordered]
    start, end = 0, len(ordered)
    for param in ("after", "before"):
        cursor = query.get(param)
        if cursor is None:
            continue
        if cursor not in ids:
            raise BadRequest(f"No input item with id '{cursor}' in this response.", param=param)
        if param == "after":
            start = ids.index(cursor) + 1
        else:
            end = ids.index(cursor)
    window = ordered[start:end]
    page = window[:limit] if "before" not in query or "after" in query else window[-limit:]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(window) > len(page),
    }
