"""Reading errors in upstream answers: the human part of an error body, and whether a body or a
stream chunk carries an error at all (the secret scrub runs only then)."""

from __future__ import annotations

import re

import orjson


def upstream_error_message(body: bytes, limit: int = 500) -> str:
    """The human part of an upstream's error body, whatever its dialect, without echoing secrets."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:limit].decode("utf-8", "replace").strip()
    if isinstance(data, list) and data:
        data = data[0]  # Gemini sometimes wraps the error in a list
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:limit]
        if isinstance(err, str):
            return err[:limit]
        if isinstance(data.get("message"), str):
            return data["message"][:limit]
    return body[:limit].decode("utf-8", "replace").strip()


# In every error object and error event of every dialect. Without its closing quote it also
# finds `"errors":[…]` (Cloudflare-style answers) and `"error_…"` fields, which quote keys too.
ERROR_MARKER = b'"error'
# What follows a marker that holds no error: Responses objects always carry `"error":null`,
# Cloudflare-style answers say `"errors":[]` when all went well.
_NO_ERROR = re.compile(rb's?"\s*:\s*(?:null|\[\s*\])')


def carries_error(data: bytes) -> bool:
    """Whether `data` (a JSON body, or SSE events) holds an error object or an error event.

    One scan for the marker, which nearly every answer lacks; when it is there, a short match
    where each marker ends tells an empty `"error":null` / `"errors":[]` from a real error."""
    at = data.find(ERROR_MARKER)
    while at >= 0:
        at += len(ERROR_MARKER)
        if _NO_ERROR.match(data, at) is None:
            return True
        at = data.find(ERROR_MARKER, at)
    return False
