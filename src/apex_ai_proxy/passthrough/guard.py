"""Decide whether a passthrough request may go out, and to which checked addresses.

Errors (defined in the one tree, apex_ai_proxy/errors; each carries the HTTP status and a
stable `code` for the error body):

    PassthroughError
     ├── PassthroughRefused            403  host not allowlisted, scheme, port, private address
     │    └── InvalidPassthroughHeader 400  malformed provider header, unknown API type
     ├── InvalidRequestTarget          400  the request target is not a plain origin-form path
     │                                      (405 for a method passthrough does not relay)
     └── PassthroughUnreachable        502  the host name does not resolve (504 on DNS timeout)

The provider header is `[http://|https://]host[:port][/base/path]`. Without a scheme the
gateway uses https; `http://` must be spelled out and is only accepted when the host's
allowlist entry has `allow_http`. IPv6 literals are written in brackets: `[2001:db8::1]:8443`.

The client's request target must be origin-form (`/path?query`): `check_request_target`
refuses anything else, because the upstream URL is built from the checked target's parts and
the client's path must never be able to name another authority (`@host:port`, `//host`,
`http://host/`), escape the base path (`/../`, `%2F..%2F`) or smuggle bytes into the request
line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import unquote

from apex_ai_proxy.errors import (
    InvalidPassthroughHeader,
    InvalidRequestTarget,
    PassthroughRefused,
    PassthroughUnreachable,
)

from .config import AllowEntry, PassthroughConfig, normalize_hostname


class ResolveResult(TypedDict):
    """One checked address of a passthrough host (the shape aiohttp's resolver used)."""

    hostname: str
    host: str  # the IP address connected to
    port: int
    family: int
    proto: int
    flags: int


PROVIDER_HEADER = "X-APEX-AI-PROXY-PROVIDER"
TYPE_HEADER = "X-APEX-AI-PROXY-TYPE"
API_TYPES = frozenset({"anthropic", "chat-completions", "responses"})

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f@\\?#%]")
PASSTHROUGH_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# RFC 3986 origin-form: path of pchar and '/', optional query of pchar, '/' and '?'. Escapes
# must be complete; the query may also carry '[]' (as in `filter[name]=x`).
_PCHAR = r"A-Za-z0-9\-._~!$&'()*+,;=:@"
_ESCAPE = r"%[0-9A-Fa-f]{2}"
_ORIGIN_FORM = re.compile(rf"/(?:[{_PCHAR}/]|{_ESCAPE})*(?:\?(?:[{_PCHAR}/?\[\]]|{_ESCAPE})*)?")
_DECODED_PATH_BAD = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True, slots=True)
class PassthroughTarget:
    scheme: str
    host: str  # normalised name or IP literal (IPv6 without brackets)
    port: int
    base_path: str  # "" or "/api" (never a trailing slash)
    addresses: tuple[ResolveResult, ...] = field(default=(), compare=False)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}"

    def url(self, path: str) -> str:
        """Upstream URL for display and records: the origin, base path and a checked path."""
        return f"{self.origin}{self.base_path}{path}"


def check_method(method: str) -> str:
    """Passthrough relays the ordinary API methods only (never CONNECT or TRACE)."""
    if method not in PASSTHROUGH_METHODS:
        raise InvalidRequestTarget(
            f"passthrough does not relay {method[:20]!r} requests",
            status=405,
            code="method_not_allowed",
        )
    return method


def check_request_target(raw_path_qs: str) -> tuple[str, str]:
    """The client's origin-form target split into (path, query), both still percent-encoded.

    Refused: anything not starting with a single '/' (absolute-form, authority-form, `*`,
    `@host`, `//host`), characters outside RFC 3986 (no spaces, controls, '\\', '#',
    non-ASCII), malformed percent escapes, and '.'/'..' segments even when encoded or split
    by an encoded slash, which an upstream may decode before routing.
    """
    if _ORIGIN_FORM.fullmatch(raw_path_qs) is None or raw_path_qs.startswith("//"):
        raise InvalidRequestTarget(
            "passthrough needs an origin-form request target: a path starting with a single "
            "'/', an optional '?query', RFC 3986 characters only, and no '#' fragment"
        )
    path, _, query = raw_path_qs.partition("?")
    decoded = unquote(path, errors="replace") if "%" in path else path
    if _DECODED_PATH_BAD.search(decoded):
        raise InvalidRequestTarget(
            "the request path must not encode control characters or a backslash"
        )
    if any(segment in (".", "..") for segment in decoded.split("/")):
        raise InvalidRequestTarget("'.' and '..' path segments are not allowed in passthrough")
    return path, query


# Headers whose whole value (or, for Authorization, the credential after its scheme) being a
# gateway token makes `forward()` drop the header: those are left to it.
_DROPPED_WHEN_TOKEN = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
# What separates a credential from its neighbours in a header value or a query string.
_CREDENTIAL_SEPARATORS = re.compile(r"[\s,;=&]+")


def check_no_stray_token(
    headers: Any, query: str, is_token: Callable[[str], bool], lengths: frozenset[int]
) -> None:
    """Refuse a gateway token the client put where `forward()` would relay it: the query
    string (Gemini's `?key=`, percent-encoded or not), a second Authorization header, a tab
    after `Bearer`, any other header. The client meant to authenticate; the upstream must
    never see it, and silently cutting it out of a query would change the request."""
    if not lengths:
        return
    if query and _holds_token(unquote(query), is_token, lengths):
        raise InvalidRequestTarget(
            "the gateway token is in the query string; it is never sent upstream: remove it",
            code="gateway_token_upstream",
        )
    for name, value in headers.items():
        lname = name.lower()
        if lname.startswith("x-apex-ai-proxy-") or not _holds_token(value, is_token, lengths):
            continue
        if lname in _DROPPED_WHEN_TOKEN:
            stripped = value.strip()
            credential = stripped.partition(" ")[2].strip() if lname == "authorization" else ""
            if is_token(stripped) or is_token(credential):
                continue  # forward() drops this header and records that it did
        raise InvalidRequestTarget(
            f"the gateway token is in header {name[:40]!r}; it is never sent upstream: "
            "send it only in X-APEX-AI-PROXY-TOKEN",
            code="gateway_token_upstream",
        )


def _holds_token(text: str, is_token: Callable[[str], bool], lengths: frozenset[int]) -> bool:
    """Whether one of the separated parts of `text` is a gateway token. Only parts as long as
    a token are compared (in constant time, every one): a header of thousands of short parts
    costs a split, not thousands of comparisons."""
    found = False
    for part in _CREDENTIAL_SEPARATORS.split(text):
        if len(part) in lengths:
            found |= is_token(part)
    return found


def check_api_type(value: str | None) -> str | None:
    """Validate `X-APEX-AI-PROXY-TYPE` (absent is fine); returns it lower-cased."""
    if value is None:
        return None
    api_type = value.strip().lower()
    if api_type not in API_TYPES:
        raise InvalidPassthroughHeader(
            f"{TYPE_HEADER} must be one of {', '.join(sorted(API_TYPES))}, got {value[:40]!r}"
        )
    return api_type


def parse_target(
    header_value: str, config: PassthroughConfig
) -> tuple[PassthroughTarget, AllowEntry]:
    """Parse the provider header and apply the allowlist (no DNS yet)."""
    value = header_value.strip()
    scheme = "https"
    lowered = value[:8].lower()
    if lowered.startswith("https://"):
        value = value[8:]
    elif lowered.startswith("http://"):
        scheme, value = "http", value[7:]
    elif "://" in value:
        raise InvalidPassthroughHeader(
            f"{PROVIDER_HEADER}: only http:// and https:// are supported"
        )
    if not value:
        raise InvalidPassthroughHeader(f"{PROVIDER_HEADER} is empty")
    if _BAD_CHARS.search(value):
        raise InvalidPassthroughHeader(
            f"{PROVIDER_HEADER} must be host[:port][/base/path] without credentials, "
            "spaces, '?', '#', '%' or '\\'"
        )
    authority, slash, path = value.partition("/")
    host, port = _split_authority(authority, scheme)
    base_path = ("/" + path).rstrip("/") if slash else ""
    if any(segment in (".", "..") for segment in base_path.split("/")):
        raise InvalidPassthroughHeader(
            f"{PROVIDER_HEADER}: '.' and '..' path segments are not allowed"
        )

    entry = config.entry_for(host)
    if entry is None:
        raise PassthroughRefused(f"host {host!r} is not on the passthrough allowlist")
    if scheme == "http" and not entry.allow_http:
        raise PassthroughRefused(f"plain http to {host!r} is not allowed; use https")
    if not entry.port_allowed(port, scheme):
        raise PassthroughRefused(f"port {port} is not allowed for host {host!r}")
    if host in METADATA_HOSTS:
        raise PassthroughRefused(f"{host!r} is a cloud metadata endpoint")
    return PassthroughTarget(scheme, host, port, base_path), entry


async def resolve_target(header_value: str, config: PassthroughConfig) -> PassthroughTarget:
    """Parse, allowlist, resolve and check every address; the result pins those addresses."""
    target, entry = parse_target(header_value, config)
    infos = await _lookup(target.host, target.port, config.connect_timeout)
    addresses: list[ResolveResult] = []
    for family, _, proto, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if family == socket.AF_INET6 and sockaddr[3]:
            raise PassthroughRefused(f"{target.host!r} resolves to a scoped IPv6 address")
        reason = address_refusal(sockaddr[0], allow_private=entry.allow_private)
        if reason:
            raise PassthroughRefused(f"{target.host!r} resolves to {sockaddr[0]}, {reason}")
        addresses.append(
            ResolveResult(
                hostname=target.host,
                host=sockaddr[0],
                port=target.port,
                family=family,
                proto=proto,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        )
    if not addresses:
        raise PassthroughUnreachable(f"{target.host!r} has no IPv4 or IPv6 address")
    return PassthroughTarget(
        target.scheme, target.host, target.port, target.base_path, tuple(addresses)
    )


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why this address may not be reached, or None. Metadata addresses are always refused."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or (ip.version == 6 and ip.is_site_local):
        return "a private address"
    if not ip.is_global:
        return "a non-global address"
    return None


def _split_authority(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidPassthroughHeader(f"{PROVIDER_HEADER}: unclosed '[' in IPv6 address")
        raw_host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidPassthroughHeader(f"{PROVIDER_HEADER}: unexpected text after ']'")
        raw_port = rest[1:] if rest else None
    elif authority.count(":") > 1:
        raise InvalidPassthroughHeader(
            f"{PROVIDER_HEADER}: write IPv6 addresses in brackets, e.g. [2001:db8::1]:443"
        )
    else:
        raw_host, colon, port_text = authority.partition(":")
        raw_port = port_text if colon else None
    host = normalize_hostname(raw_host)
    if host is None:
        raise InvalidPassthroughHeader(f"{PROVIDER_HEADER}: invalid host {raw_host[:80]!r}")
    if raw_port is None:
        return host, 443 if scheme == "https" else 80
    if (
        not raw_port.isascii()
        or not raw_port.isdigit()
        or len(raw_port) > 5
        or not 1 <= int(raw_port) <= 65535
    ):
        raise InvalidPassthroughHeader(f"{PROVIDER_HEADER}: invalid port {raw_port[:10]!r}")
    return host, int(raw_port)


async def _lookup(host: str, port: int, timeout: float) -> list:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise PassthroughUnreachable(f"resolving {host!r} timed out", status=504) from None
    except OSError as exc:
        raise PassthroughUnreachable(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
