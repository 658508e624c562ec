"""Errors the gateway answers with, and their shapes in each client dialect.

    GatewayError                 status + message + type; rendered in the client's dialect
    ├── BadRequest (400)         invalid JSON, missing/invalid field
    ├── Unauthorized (401)       missing or wrong gateway token
    ├── Forbidden (403)          passthrough refusals
    ├── NotFound (404)           unknown model, route or stored response
    ├── MethodNotAllowed (405)
    ├── PayloadTooLarge (413)
    ├── AllRateLimited (429)     every candidate rate-limited; carries Retry-After
    ├── UpstreamUnavailable (503) every candidate failed or cooling down
    ├── UpstreamInvalid (502)    an upstream's 2xx answer is not what its API returns
    └── UpstreamError (any)      an upstream's own client error, relayed with its status

Messages tell the person what to fix; they never contain an API key, a full upstream URL with
secrets or a stack trace.
"""

from __future__ import annotations

import re

import orjson


class GatewayError(Exception):
    status = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}


class BadRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "not_found_error"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class AllRateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamUnavailable(GatewayError):
    status = 503
    error_type = "service_unavailable"
    code = "upstream_unavailable"


class UpstreamInvalid(GatewayError):
    status = 502
    error_type = "api_error"
    code = "upstream_invalid_answer"


class UpstreamError(GatewayError):
    """An upstream's own error answer, carried to the client in its dialect."""


# --- shapes per dialect ----------------------------------------------------------------------

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


def anthropic_error_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


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


# Google's canonical status names by HTTP status (google.rpc.Code's HTTP mapping).
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_status(status: int) -> str:
    if status in GOOGLE_STATUS:
        return GOOGLE_STATUS[status]
    return "FAILED_PRECONDITION" if 400 <= status < 500 else "INTERNAL"


def gemini_error_body(status: int, message: str) -> bytes:
    """Google's error shape: `{"error": {"code", "message", "status"}}`."""
    return orjson.dumps(
        {"error": {"code": status, "message": message, "status": google_status(status)}}
    )


def error_body(dialect: str, err: GatewayError) -> bytes:
    """The body for `err` in the client's dialect ("anthropic", "gemini" or any OpenAI-shaped one)."""
    if dialect == "anthropic":
        return anthropic_error_body(err.status, err.message)
    if dialect == "gemini":
        return gemini_error_body(err.status, err.message)
    return openai_error_body(err.message, err.error_type, err.code, err.param)


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


def stream_error_frame(dialect: str, status: int, message: str) -> bytes:
    """The error event a client of `dialect` can parse when a stream fails after it started."""
    if dialect == "anthropic":
        return b"event: error\ndata: " + anthropic_error_body(status, message) + b"\n\n"
    if dialect == "gemini":  # no `event:` line: Google's streams are bare `data:` events
        return b"data: " + gemini_error_body(status, message) + b"\n\n"
    if dialect == "responses":
        event = {
            "type": "error",
            "code": "upstream_stream_error",
            "message": message,
            "param": None,
        }
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
    error_type = (
        "rate_limit_error"
        if status == 429
        else "server_error"
        if status >= 500
        else "invalid_request_error"
    )
    return b"data: " + openai_error_body(message, error_type, "upstream_stream_error") + b"\n\n"
