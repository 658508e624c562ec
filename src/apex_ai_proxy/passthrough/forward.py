"""Relay one passthrough request to its checked upstream and stream the answer back unchanged.

Connection pinning: `resolve_target` resolves and checks every address of the upstream host.
The connection must go to exactly those addresses, never to a second DNS answer (rebinding).
`PassthroughClient` owns one pooled `aiohttp.ClientSession` whose connector has DNS caching off
and a `PinnedResolver`: the resolver answers only from a per-request map held in a context
variable that `forward` sets around the upstream call, and fails for any host not pinned there.
So there is one pool (keep-alive kept across requests, no connector per host), concurrent
requests cannot see each other's pins, and nothing can reach an address that was not checked.
A kept-alive connection is reused only for the same host name and port, and was opened to an
address that passed the same check. TLS SNI, certificate checks and `Host` use the host name.

The session does not decompress (`auto_decompress=False`): bytes and `Content-Encoding` are
relayed as received. If the client sent no `Accept-Encoding`, `identity` is sent so that the
upstream does not compress an answer the client never asked to be compressed.
"""

from __future__ import annotations

import contextvars
import socket
import ssl
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from apex_ai_proxy.errors import error_body
from apex_ai_proxy.http import Request, Response, StreamResponse

from .config import PassthroughConfig
from .guard import PassthroughError, PassthroughTarget

_PINNED: contextvars.ContextVar[dict[tuple[str, int], tuple[ResolveResult, ...]] | None] = (
    contextvars.ContextVar("apex_passthrough_pinned", default=None)
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


class PinnedResolver(AbstractResolver):
    """Answers only with the addresses `forward` pinned for the current request."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = _PINNED.get()
        results = pinned.get((host, port)) if pinned else None
        if not results:
            raise socket.gaierror(
                socket.EAI_NONAME, f"passthrough: {host}:{port} was not checked before connecting"
            )
        if family in (socket.AF_INET, socket.AF_INET6):
            return [r for r in results if r["family"] == family]
        return list(results)

    async def close(self) -> None:
        return None


class PassthroughClient:
    """The passthrough connection pool. Create once per process; `await close()` on shutdown."""

    def __init__(
        self,
        config: PassthroughConfig,
        *,
        connection_limit: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._limit = connection_limit
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=PinnedResolver(),
                use_dns_cache=False,
                ssl=self._ssl,
                limit=self._limit,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self.config.connect_timeout,
                    sock_read=self.config.timeout,
                ),
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
) -> ForwardResult:
    """Send `body` with the client's method, path and query to `target`, relay the answer.

    `target` must come from `resolve_target` (its addresses are the only ones connected to).
    Never raises for upstream failures: before the first byte they become an error response
    (502, or 504 on timeout); after it the client connection is closed so the client sees a
    truncated body, never a falsely complete one.
    """
    started = time.perf_counter()
    outcome = ForwardOutcome(
        method=request.method,
        upstream_url=target.url(request.path),
        api_type=api_type,
        request_bytes=len(body),
    )
    if len(body) > client.config.max_body_bytes:
        outcome.status, outcome.error = 413, "request body too large"
        message = f"request body exceeds {client.config.max_body_bytes} bytes"
        response = error_response(
            413, message, "request_too_large", api_type=api_type, path=request.path
        )
        return ForwardResult(response, outcome)

    headers, skip = upstream_headers(request.headers)
    url = URL(target.url(request.raw_path_qs), encoded=True)
    pin = _PINNED.set({(target.host, target.port): target.addresses})
    response: StreamResponse | None = None
    try:
        async with client.session.request(
            request.method,
            url,
            data=body or None,
            headers=headers,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as upstream:
            outcome.ttfb_ms = (time.perf_counter() - started) * 1000
            outcome.status = upstream.status
            response = StreamResponse(status=upstream.status, reason=upstream.reason)
            copy_response_headers(upstream.headers, response.raw_headers)
            if request_id is not None:
                response.raw_headers.append(("x-request-id", request_id))
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                    outcome.response_bytes += len(chunk)
                await response.write_eof()
            except ConnectionResetError:  # only our writes to the client raise it here
                outcome.error = "client disconnected"
    except (aiohttp.ClientError, TimeoutError) as exc:
        timed_out = isinstance(exc, TimeoutError)
        if response is None:
            status = 504 if timed_out else 502
            outcome.status, outcome.error = status, _describe(exc)
            message = f"upstream {target.origin} {'timed out' if timed_out else 'is unreachable'}"
            response = error_response(
                status,
                message,
                "upstream_timeout" if timed_out else "upstream_unavailable",
                api_type=api_type,
                path=request.path,
            )
        else:
            outcome.error = f"upstream stream cut short: {_describe(exc)}"
            request.close_connection()
    finally:
        _PINNED.reset(pin)
        outcome.duration_ms = (time.perf_counter() - started) * 1000
    return ForwardResult(response, outcome)


def upstream_headers(incoming) -> tuple[CIMultiDict[str], tuple[str, ...]]:
    """Client headers minus gateway, hop-by-hop, Host, length and forwarding headers."""
    listed = _connection_tokens(incoming)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lname = name.lower()
        if (
            lname in _REQUEST_DROP
            or lname in listed
            or lname.startswith(("x-apex-ai-proxy-", "x-forwarded-", "proxy-"))
        ):
            continue
        headers.add(name, value)
    if "accept-encoding" not in headers:
        headers["Accept-Encoding"] = "identity"
    skip = tuple(name for name in ("User-Agent", "Content-Type") if name not in headers)
    return headers, skip


def copy_response_headers(upstream, into: list[tuple[str, str]]) -> None:
    listed = _connection_tokens(upstream)
    for name, value in upstream.items():
        lname = name.lower()
        if lname in _RESPONSE_DROP or lname in listed or lname.startswith("proxy-"):
            continue
        into.append((name, value))


def _connection_tokens(headers) -> frozenset[str]:
    if hasattr(headers, "getall"):  # the upstream's (multi-valued) headers
        values = headers.getall("Connection", ())
    else:  # the client's: one value per name, repeats already joined
        values = [headers["connection"]] if "connection" in headers else []
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


# --- error bodies -------------------------------------------------------------------------


def error_dialect(api_type: str | None, path: str) -> str:
    """`anthropic` or `openai_chat`: the declared type wins, else the path decides."""
    if api_type is not None:
        return "anthropic" if api_type == "anthropic" else "openai_chat"
    return "anthropic" if path.rstrip("/").endswith("/messages") else "openai_chat"


def error_response(
    status: int, message: str, code: str, *, api_type: str | None, path: str
) -> Response:
    return refusal_response(
        PassthroughError(message, status=status, code=code), api_type=api_type, path=path
    )


def refusal_response(exc: PassthroughError, *, api_type: str | None, path: str) -> Response:
    """The response for anything `check_api_type` / `resolve_target` raised."""
    body = error_body(error_dialect(api_type, path), exc)
    return Response(status=exc.status, body=body, content_type="application/json")
