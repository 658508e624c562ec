"""Errors the gateway answers with, and their one shape per client dialect.

    GatewayError                    status + message + type; rendered in the client's dialect
    ├── BadRequest (400)            invalid JSON, missing/invalid field
    ├── Unauthorized (401)          missing or wrong gateway token
    ├── Forbidden (403)
    ├── NotFound (404)              unknown model, route or stored response
    ├── MethodNotAllowed (405)
    ├── PayloadTooLarge (413)
    ├── AllRateLimited (429)        every candidate rate-limited; carries Retry-After
    ├── UpstreamUnavailable (503)   every candidate failed or cooling down
    ├── StoreUnavailable (503)      the Responses API's store is down
    ├── UpstreamInvalid (502)       an upstream's 2xx answer is not what its API returns
    ├── UpstreamError (any)         an upstream's own client error, relayed with its status
    └── PassthroughError (500)      the checks in front of a passthrough relay
        ├── PassthroughRefused (403)         not allowed: host, port, scheme, address
        │   └── InvalidPassthroughHeader (400)
        ├── InvalidRequestTarget (400)       a request target that cannot be relayed safely
        └── PassthroughUnreachable (502/504) the host name does not resolve (in time)

    tree.py    the classes above
    render.py  one renderer per client dialect: error_body (whole), stream_error_event (stream),
               protocol_error_body (the HTTP server's own refusals)
    scan.py    reading upstream error bodies; finding an error in a chunk (carries_error)

Messages tell the person what to fix; they never contain an API key, a full upstream URL with
secrets, an operator's host name or a stack trace.
"""

from .render import (
    GEMINI_STATUS_NAMES,
    anthropic_error_body,
    anthropic_error_type,
    dialect_of_path,
    error_body,
    gemini_error_body,
    gemini_status_name,
    openai_error_body,
    openai_error_type,
    protocol_error_body,
    stream_error_event,
    stream_error_frame,
)
from .scan import ERROR_MARKER, carries_error, upstream_error_message
from .tree import (
    AllRateLimited,
    BadRequest,
    Forbidden,
    GatewayError,
    InvalidPassthroughHeader,
    InvalidRequestTarget,
    MethodNotAllowed,
    NotFound,
    PassthroughError,
    PassthroughRefused,
    PassthroughUnreachable,
    PayloadTooLarge,
    StoreUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamInvalid,
    UpstreamUnavailable,
)

__all__ = [
    "ERROR_MARKER",
    "GEMINI_STATUS_NAMES",
    "AllRateLimited",
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "InvalidPassthroughHeader",
    "InvalidRequestTarget",
    "MethodNotAllowed",
    "NotFound",
    "PassthroughError",
    "PassthroughRefused",
    "PassthroughUnreachable",
    "PayloadTooLarge",
    "StoreUnavailable",
    "Unauthorized",
    "UpstreamError",
    "UpstreamInvalid",
    "UpstreamUnavailable",
    "anthropic_error_body",
    "anthropic_error_type",
    "carries_error",
    "dialect_of_path",
    "error_body",
    "gemini_error_body",
    "gemini_status_name",
    "openai_error_body",
    "openai_error_type",
    "protocol_error_body",
    "stream_error_event",
    "stream_error_frame",
    "upstream_error_message",
]
