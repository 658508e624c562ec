"""Relay one passthrough request to its checked upstream and stream the answer back unchanged.

Connection pinning: `resolve_target` resolves and checks every address of the upstream host.
The connection must go to exactly those addresses, never to a second DNS answer (rebinding).
`PassthroughClient` sends through the gateway's own `HttpClient` with `connect_to` set to the
checked addresses: it connects to one of them, in order, and never resolves the name itself.
A kept-alive connection is reused only for the same host name, port and checked addresses.
TLS SNI, certificate checks and `Host` use the host name. No proxy is used (environment
proxies included), redirects are relayed, never followed.

Nothing is decompressed: bytes and `Content-Encoding` are relayed as received. If the client
sent no `Accept-Encoding`, `identity` is sent so that the upstream does not compress an answer
the client never asked to be compressed.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from apex_ai_proxy.errors import PassthroughError, error_body
from apex_ai_proxy.http import (
    ClientOptions,
    ClientResponse,
    HttpClient,
    Request,
    Response,
    StreamResponse,
    Timeouts,
    UpstreamConnectionError,
    UpstreamTimeout,
)

from .config import PassthroughConfig
from .guard import (
    InvalidRequestTarget,
    PassthroughRefused,
    PassthroughTarget,
    check_method,
    check_request_target,
)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {
    "host",
    "content-length",
    "expect",
    "forwarded",
    "via",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
}
_RESPONSE_DROP = HOP_BY_HOP


class PassthroughClient:
    """The passthrough connection pool: the gateway's `HttpClient`, pinned to checked addresses.
    Create once per process; `await close()` on shutdown."""

    def __init__(
        self,
        config: PassthroughConfig,
        *,
        connection_limit: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._http = HttpClient()
        # proxy "": never an environment proxy (the connection goes to a checked address)
        self._options = ClientOptions(
            proxy="", max_connections=connection_limit, ssl_context=ssl_context
        )
        # no total limit: a relayed stream may last; silence is limited by `timeout`
        self._timeouts = Timeouts(
            total=24 * 3600.0, connect=config.connect_timeout, read=config.timeout
        )

    async def send(
        self,
        method: str,
        url: UpstreamURL,
        headers: list[tuple[str, str]],
        body: bytes | None,
        target: PassthroughTarget,
    ) -> ClientResponse:
        """Send to one of `target`'s checked addresses, never to anything else."""
        addresses = [a["host"] for a in target.addresses]
        if not addresses:
            raise PassthroughRefused(f"{target.host!r} was not resolved and checked")
        return await self._http.send(
            method,
            url.text,
            headers,
            body,
            self._timeouts,
            options=self._options,
            connect_to=addresses,
        )

    async def close(self) -> None:
        await self._http.close()


@dataclass(slots=True)
class ForwardOutcome:
    """What the core records. `upstream_url` never carries the query string."""

    method: str
    upstream_url: str
    api_type: str | None
    status: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    ttfb_ms: float | None = None  # until the upstream's status line and headers arrived
    duration_ms: float = 0.0
    error: str | None = None  # set when the relay failed or was cut short
    dropped_credentials: list[str] = field(default_factory=list)  # header names, never values


@dataclass(slots=True)
class ForwardResult:
    response: StreamResponse
    outcome: ForwardOutcome


async def forward(
    request: Request,
    body: bytes,
    target: PassthroughTarget,
    client: PassthroughClient,
    *,
    api_type: str | None = None,
    request_id: str | None = None,
    is_gateway_secret: Callable[[str], bool] | None = None,
) -> ForwardResult:
    """Send `body` with the client's method, path and query to `target`, relay the answer.

    `target` must come from `resolve_target` (its addresses are the only ones connected to).
    Never raises for upstream failures: before the first byte they become an error response
    (502, or 504 on timeout); after it the client connection is closed so the client sees a
    truncated body, never a falsely complete one. A method, target or header passthrough
    does not relay is answered 4xx here too, whatever the caller checked before (defence in
    depth: nothing reaches the network unless this function checked it).

    `is_gateway_secret(value)` says whether a credential value is one of the gateway's own
    tokens (or virtual keys): such headers are dropped, never sent upstream, and their names
    listed in `outcome.dropped_credentials`.
    """
    started = time.perf_counter()
    outcome = ForwardOutcome(
        method=request.method,
        upstream_url=target.origin + target.base_path,
        api_type=api_type,
        request_bytes=len(body),
    )
    try:
        check_method(request.method)
        path, query = check_request_target(request.raw_path_qs)
        outcome.upstream_url = target.url(path)
        url = upstream_url(target, path, query)
        headers = upstream_headers(request.headers, is_gateway_secret, outcome)
        if len(body) > client.config.max_body_bytes:
            raise PassthroughError(
                f"request body exceeds {client.config.max_body_bytes} bytes",
                status=413,
                code="request_too_large",
            )
    except PassthroughError as exc:
        outcome.status, outcome.error = exc.status, exc.message
        response = refusal_response(exc, api_type=api_type, path=request.path)
        return ForwardResult(response, outcome)

    response: StreamResponse | None = None
    upstream: ClientResponse | None = None
    try:
        upstream = await client.send(request.method, url, headers, body or None, target)
        outcome.ttfb_ms = (time.perf_counter() - started) * 1000
        outcome.status = upstream.status
        response = StreamResponse(status=upstream.status, reason=upstream.reason)
        copy_response_headers(upstream.raw_headers, response.raw_headers)
        if request_id is not None:
            response.raw_headers.append(("x-request-id", request_id))
        try:
            await response.prepare(request)
            while (chunk := await upstream.next_chunk()) is not None:
                await response.write(chunk)
                outcome.response_bytes += len(chunk)
            await response.write_eof()
        except ConnectionResetError:  # only our writes to the client raise it here
            outcome.error = "client disconnected"
            upstream.release()
    except (UpstreamConnectionError, UpstreamTimeout) as exc:
        timed_out = isinstance(exc, TimeoutError)
        if response is None:
            status = 504 if timed_out else 502
            outcome.status, outcome.error = status, _describe(exc)
            message = f"upstream {target.origin} {'timed out' if timed_out else 'is unreachable'}"
            response = failure_response(
                status,
                message,
                "upstream_timeout" if timed_out else "upstream_unavailable",
                api_type=api_type,
                path=request.path,
            )
        else:
            outcome.error = f"upstream stream cut short: {_describe(exc)}"
            request.close_connection()
    except BaseException:
        if upstream is not None:
            upstream.release()  # e.g. cancelled: the connection cannot be reused
        raise
    finally:
        outcome.duration_ms = (time.perf_counter() - started) * 1000
    return ForwardResult(response, outcome)


class UpstreamURL(NamedTuple):
    """An upstream URL as sent (`text`) and as it parses back."""

    text: str
    scheme: str
    host: str | None
    port: int | None
    user: str | None
    password: str | None
    raw_path: str
    raw_query_string: str
    raw_fragment: str


def upstream_url(target: PassthroughTarget, path: str, query: str) -> UpstreamURL:
    """The upstream URL from parsed parts, re-parsed and checked against `target`.

    `path` and `query` come from `check_request_target`. The URL is never made by joining the
    client's raw target to the origin: whatever the target holds, the connection goes to the
    checked scheme, host and port, with no userinfo. `target` must carry the addresses
    `resolve_target` checked; an IP-literal host must be one of them.
    """
    if not target.addresses:
        raise PassthroughRefused(f"{target.host!r} was not resolved and checked")
    if _is_ip(target.host) and target.host not in {a["host"] for a in target.addresses}:
        raise PassthroughRefused(f"{target.host!r} is not among its checked addresses")
    host = f"[{target.host}]" if ":" in target.host else target.host
    text = f"{target.scheme}://{host}:{target.port}{target.base_path + path or '/'}"
    if query:
        text += "?" + query
    try:
        parts = urlsplit(text)
        url = UpstreamURL(
            text,
            parts.scheme,
            parts.hostname,
            parts.port,
            parts.username,
            parts.password,
            parts.path,
            parts.query,
            parts.fragment,
        )
    except ValueError:
        raise InvalidRequestTarget(
            "the request target does not form a valid upstream URL"
        ) from None
    if (
        url.scheme != target.scheme
        or url.host != target.host
        or url.port != target.port
        or url.user is not None
        or url.password is not None
        or url.raw_path != (target.base_path + path or "/")
        or url.raw_query_string != query
        or url.raw_fragment
    ):
        raise InvalidRequestTarget("the request target does not form a valid upstream URL")
    return url


# Headers that carry a credential: the client's own upstream key goes through, a gateway
# token never does.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
# RFC 9110 token for names; values without controls other than tab (obs-text is allowed).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def upstream_headers(
    incoming,
    is_gateway_secret: Callable[[str], bool] | None = None,
    outcome: ForwardOutcome | None = None,
) -> list[tuple[str, str]]:
    """Client headers minus gateway, hop-by-hop, Host, length and forwarding headers, and
    minus any credential header that holds a gateway token (named in `outcome`)."""
    listed = _connection_tokens(incoming.items())
    headers: list[tuple[str, str]] = []
    for name, value in incoming.items():
        lname = name.lower()
        if (
            lname in _REQUEST_DROP
            or lname in listed
            or lname.startswith(("x-apex-ai-proxy-", "x-forwarded-", "proxy-"))
        ):
            continue
        if not _HEADER_NAME.fullmatch(name) or _HEADER_VALUE_BAD.search(value):
            raise InvalidRequestTarget(
                f"header {name[:40]!r} has characters that cannot be relayed", code="invalid_header"
            )
        if (
            is_gateway_secret is not None
            and lname in _CREDENTIAL_HEADERS
            and _holds_secret(lname, value, is_gateway_secret)
        ):
            if outcome is not None:
                outcome.dropped_credentials.append(lname)
            continue
        headers.append((name, value))
    if "accept-encoding" not in incoming:
        headers.append(("Accept-Encoding", "identity"))
    return headers


def _holds_secret(name: str, value: str, is_gateway_secret: Callable[[str], bool]) -> bool:
    """Whether the header value is a gateway secret: the whole value, or for Authorization
    the credential after its scheme (`Bearer <token>`, any scheme). Both are always checked
    so that the time taken does not depend on the value's shape."""
    value = value.strip()
    scheme_free = value.partition(" ")[2].strip() if name == "authorization" else value
    whole = is_gateway_secret(value)
    after_scheme = is_gateway_secret(scheme_free)
    return whole or after_scheme


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def copy_response_headers(upstream: list[tuple[str, str]], into: list[tuple[str, str]]) -> None:
    listed = _connection_tokens(upstream)
    for name, value in upstream:
        lname = name.lower()
        if lname in _RESPONSE_DROP or lname in listed or lname.startswith("proxy-"):
            continue
        into.append((name, value))


def _connection_tokens(pairs: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The header names a `Connection` header lists (they are hop-by-hop too)."""
    values = [v for name, v in pairs if name.lower() == "connection"]
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return str(exc) or type(exc).__name__  # the client's messages carry no URL or credential


# --- error bodies -------------------------------------------------------------------------


def error_dialect(api_type: str | None, path: str) -> str:
    """`anthropic` or `openai_chat`: the declared type wins, else the path decides."""
    if api_type is not None:
        return "anthropic" if api_type == "anthropic" else "openai_chat"
    return "anthropic" if path.rstrip("/").endswith("/messages") else "openai_chat"


def failure_response(
    status: int, message: str, code: str, *, api_type: str | None, path: str
) -> Response:
    return refusal_response(
        PassthroughError(message, status=status, code=code), api_type=api_type, path=path
    )


def refusal_response(exc: PassthroughError, *, api_type: str | None, path: str) -> Response:
    """The response for anything `check_api_type` / `resolve_target` raised."""
    body = error_body(error_dialect(api_type, path), exc)
    return Response(status=exc.status, body=body, content_type="application/json")
