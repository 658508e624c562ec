"""The one renderer per client dialect: a whole error body, and the stream's error event.

    dialect       whole body (error_body)                       stream event (stream_error_event)
    openai_chat   {"error": {message, type, param, code}}       data: {"error": {…same…}}
    responses     {"error": {message, type, param, code}}       event: response.failed
                                                                data: {type, sequence_number,
                                                                       response: {…, status:
                                                                       "failed", error: {code,
                                                                       message}}}
    anthropic     {"type": "error", "error": {type, message}}   event: error, data: same body
    gemini        {"error": {code: <status>, message, status}}  data: same body

Any other dialect name gets OpenAI's shape (the passthrough's upstream types, embeddings).
The same failure reaches a client in the same shape whether its stream was translated from
another dialect or relayed as it came: every StreamEncoder, the relay and the Responses store's
tap call `stream_error_event`; the HTTP server's own refusals come from `protocol_error_body`.

Responses streams end with `response.failed` (a ResponseFailedEvent), not the bare `error` event
(ResponseErrorEvent): it is a final event, so the SDK's `responses.stream()` helpers, stores and
agents that wait for the response's last status see it fail, with the error inside it.
"""

from __future__ import annotations

from typing import Any

import orjson

from .tree import GatewayError

# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# OpenAI's error types by status; other 4xx are invalid_request_error, other 5xx server_error.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}

# google.rpc.Code names as Google's REST APIs pair them with HTTP statuses.
GEMINI_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Refusals about the request that HTTP numbers 5xx (method, version): never "a fault of ours".
_REQUEST_FAULTS = frozenset({501, 505})


def anthropic_error_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def openai_error_type(status: int) -> str:
    if status in _OPENAI_TYPES:
        return _OPENAI_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def gemini_status_name(status: int) -> str:
    if status in GEMINI_STATUS_NAMES:
        return GEMINI_STATUS_NAMES[status]
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL"


def _stream_code(status: int) -> str | None:
    """The `code` of a mid-stream error (the values OpenAI's own stream errors carry)."""
    if status == 429:
        return "rate_limit_exceeded"
    return "server_error" if status >= 500 else None


# --- whole bodies ------------------------------------------------------------------------------


def openai_error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def anthropic_error_body(status: int, message: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
    )


def gemini_error_body(status: int, message: str) -> bytes:
    error = {"code": status, "message": message, "status": gemini_status_name(status)}
    return orjson.dumps({"error": error})


def error_body(dialect: str, err: GatewayError) -> bytes:
    """The body for `err` in the client's dialect."""
    if dialect == "anthropic":
        return anthropic_error_body(err.status, err.message)
    if dialect == "gemini":
        return gemini_error_body(err.status, err.message)
    return openai_error_body(err.message, err.error_type, err.code, err.param)


def dialect_of_path(path: str) -> str:
    """The client dialect a path speaks, for answers given before any endpoint ran."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
        return "gemini"  # Google's API (endpoints/gemini.py), which the SDKs call under /v1/ too
    return "openai_chat"


def protocol_error_body(status: int, message: str, path: str = "") -> bytes:
    """What the HTTP server answers itself (400/408/413/414/431/500/501/505), in the shape of the
    API the path belongs to. HttpServer gets this function from the composition root."""
    shown = 400 if status in _REQUEST_FAULTS else status
    code = "request_too_large" if status == 413 else None
    err = GatewayError(message, status=status, error_type=openai_error_type(shown), code=code)
    dialect = dialect_of_path(path)
    if dialect == "anthropic":
        return anthropic_error_body(shown, message)
    return error_body(dialect, err)


# --- stream events -----------------------------------------------------------------------------


def stream_error_event(
    dialect: str,
    status: int,
    message: str,
    *,
    response: dict[str, Any] | None = None,
    sequence_number: int = 0,
) -> bytes:
    """The one SSE event that tells a client of `dialect` its stream failed after it started.

    Responses only: `response` is the latest snapshot of the response being streamed (copied,
    then marked failed) and `sequence_number` the number this event takes."""
    if dialect == "anthropic":
        return b"event: error\ndata: " + anthropic_error_body(status, message) + b"\n\n"
    if dialect == "gemini":
        return b"data: " + gemini_error_body(status, message) + b"\n\n"
    if dialect == "responses":
        return _response_failed(status, message, response, sequence_number)
    body = openai_error_body(message, openai_error_type(status), _stream_code(status))
    return b"data: " + body + b"\n\n"


def _response_failed(
    status: int, message: str, response: dict[str, Any] | None, sequence_number: int
) -> bytes:
    failed = dict(response) if response else {"object": "response", "output": []}
    failed["status"] = "failed"
    failed["error"] = {"code": _stream_code(status) or "invalid_prompt", "message": message}
    event = {"type": "response.failed", "sequence_number": sequence_number, "response": failed}
    return b"event: response.failed\ndata: " + orjson.dumps(event) + b"\n\n"


# The name the relay and the Responses API imported before (kept for branches merging in).
stream_error_frame = stream_error_event
