"""The gateway's error types (the tree is drawn in the package docstring, errors/__init__.py).

Each class says its status, its OpenAI-style `type` and, where it has one, a stable `code`; the
renderers in errors/render.py turn any of them into the client dialect's body or stream event.
"""

from __future__ import annotations


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


class StoreUnavailable(GatewayError):
    """The Responses API's store cannot be read or written. The message is the client's: the
    store's address and the driver's words go to the log, never here. (Not an
    UpstreamUnavailable: that one makes a pinned conversation fall back to another upstream.)"""

    status = 503
    error_type = "service_unavailable"
    code = "response_store_unavailable"


class UpstreamInvalid(GatewayError):
    status = 502
    error_type = "api_error"
    code = "upstream_invalid_answer"


class UpstreamError(GatewayError):
    """An upstream's own error answer, carried to the client in its dialect."""


# --- passthrough: the checks in front of a raw relay -------------------------------------------


class PassthroughError(GatewayError):
    status = 500
    error_type = "api_error"
    code = "passthrough_error"


class PassthroughRefused(PassthroughError):
    status = 403
    error_type = "permission_error"
    code = "passthrough_refused"


class InvalidPassthroughHeader(PassthroughRefused):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_passthrough_header"


class InvalidRequestTarget(PassthroughError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request_target"


class PassthroughUnreachable(PassthroughError):
    """The passthrough host does not resolve (502), or resolving it timed out (504)."""

    status = 502
    code = "upstream_unavailable"
