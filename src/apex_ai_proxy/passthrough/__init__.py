"""Passthrough mode: relay a request unchanged to a client-named, allowlisted upstream.

The core calls, per request carrying `X-APEX-AI-PROXY-PROVIDER`:

    api_type = check_api_type(request.headers.get(TYPE_HEADER))
    check_method(request.method); check_request_target(request.raw_path_qs)  # 405 / 400
    target = await resolve_target(request.headers[PROVIDER_HEADER], config)
    result = await forward(request, body, target, client, api_type=api_type)

and turns a `PassthroughError` from the checks into `refusal_response(exc, ...)`.
"""

from apex_ai_proxy.errors import (
    InvalidPassthroughHeader,
    InvalidRequestTarget,
    PassthroughError,
    PassthroughRefused,
    PassthroughUnreachable,
)

from .config import AllowEntry, PassthroughConfig
from .forward import (
    ForwardOutcome,
    ForwardResult,
    PassthroughClient,
    failure_response,
    forward,
    refusal_response,
)
from .guard import (
    API_TYPES,
    PROVIDER_HEADER,
    TYPE_HEADER,
    PassthroughTarget,
    address_refusal,
    check_api_type,
    check_method,
    check_request_target,
    parse_target,
    resolve_target,
)

__all__ = [
    "API_TYPES",
    "PROVIDER_HEADER",
    "TYPE_HEADER",
    "AllowEntry",
    "ForwardOutcome",
    "ForwardResult",
    "InvalidPassthroughHeader",
    "InvalidRequestTarget",
    "PassthroughClient",
    "PassthroughConfig",
    "PassthroughError",
    "PassthroughRefused",
    "PassthroughTarget",
    "PassthroughUnreachable",
    "address_refusal",
    "check_api_type",
    "check_method",
    "check_request_target",
    "failure_response",
    "forward",
    "parse_target",
    "refusal_response",
    "resolve_target",
]
