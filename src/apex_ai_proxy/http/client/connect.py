"""How a new upstream connection is opened: TLS settings, egress proxies, pinned addresses.

    direct             TCP to the host (or to each pinned address in turn), TLS if https
    http via proxy     TCP to the proxy; requests carry the absolute-form target
    https via proxy    TCP to the proxy, `CONNECT host:port`, then TLS to the origin inside it
    pinned via proxy   always a tunnel, to the pinned address itself: the proxy resolves nothing

TLS verifies against the system store (OpenSSL honours `SSL_CERT_FILE` / `SSL_CERT_DIR`), or
only against a provider's `ca_file`. SNI and the certificate check use the URL's host name
(Python sends no SNI for an IP literal and checks the IP against the certificate instead).
Proxy credentials become a `Proxy-Authorization: Basic` header and appear nowhere else: errors
name a proxy by host and port only.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from apex_ai_proxy.http.client.connection import (
    Connection,
    UpstreamConnectionError,
    UpstreamTimeout,
)

_MAX_PROXY_HEAD = 16 * 1024


@dataclass(frozen=True, slots=True, eq=False)
class ClientOptions:
    """Per-upstream settings (one object per provider, reused: compared by identity).

    proxy: None uses HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment; "" means no
    proxy at all; otherwise an http:// proxy URL, credentials allowed."""

    ca_file: str | None = None
    tls_verify: bool = True
    proxy: str | None = None
    max_connections: int = 1024  # long-lived streams: far above a general client's 100
    pool_timeout: float = 10.0
    idle_timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # replaces ca_file and tls_verify when set

    def pool_key(self) -> tuple:
        return (
            self.ca_file,
            self.tls_verify,
            self.proxy,
            self.max_connections,
            id(self.ssl_context),  # the options object holds it: the id is not recycled
        )


DEFAULT_OPTIONS = ClientOptions()


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    host_header: str


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the whole header value; never logged

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def split_url(url: str) -> tuple[Origin, bytes]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UpstreamConnectionError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname or ""
    if not host:
        raise UpstreamConnectionError("URL without a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UpstreamConnectionError("URL with an invalid port") from None
    default = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(scheme, host, port, host_header), target.encode("latin-1")


def parse_proxy(url: str) -> Proxy:
    if "://" not in url:
        url = "http://" + url  # HTTP_PROXY=host:port is common
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError("a proxy must be an http:// URL with a host")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError("a proxy URL with an invalid port") from None
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def proxy_for(origin: Origin, setting: str | None) -> Proxy | None:
    """The proxy that carries traffic to `origin`, or None for a direct connection."""
    if setting is not None:
        return parse_proxy(setting) if setting else None
    proxies = urllib.request.getproxies_environment()  # upper- and lower-case names
    url = proxies.get(origin.scheme)
    if not url:
        return None
    host = origin.host_header if ":" in origin.host_header else f"{origin.host}:{origin.port}"
    if urllib.request.proxy_bypass_environment(host, proxies):
        return None
    try:
        return parse_proxy(url)
    except ValueError:
        raise UpstreamConnectionError(f"the {origin.scheme}_proxy setting is not usable") from None


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


async def open_connection(
    factory: Callable[[], Connection],
    origin: Origin,
    addresses: Sequence[str] | None,
    proxy: Proxy | None,
    tls: ssl.SSLContext | None,
    timeout: float,
) -> Connection:
    """A connected (and, for https, TLS-established) connection, within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            if proxy is not None and (tls is not None or addresses):
                return await _tunnel(factory, origin, addresses, proxy, tls)
            if proxy is not None:
                return await _connect(factory, proxy.host, [proxy.host], proxy.port, None)
            return await _connect(factory, origin.host, addresses, origin.port, tls)
    except TimeoutError:
        raise UpstreamTimeout("connect timed out") from None
    except ssl.SSLError as exc:
        raise UpstreamConnectionError(f"TLS failed: {exc.reason or exc}") from None
    except UpstreamConnectionError:
        raise
    except OSError as exc:
        raise UpstreamConnectionError(f"connection failed: {exc.strerror or exc}") from None


async def _connect(
    factory: Callable[[], Connection],
    host: str,
    addresses: Sequence[str] | None,
    port: int,
    tls: ssl.SSLContext | None,
) -> Connection:
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for address in addresses or (host,):
        try:
            _, connection = await loop.create_connection(
                factory, address, port, ssl=tls, server_hostname=host if tls else None
            )
            return connection
        except ssl.SSLError:
            raise  # a certificate problem is the same on every address
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


class _TunnelHead(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; nothing after it (the origin speaks TLS first)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0 and not self.done.done():
            self.done.set_result(self.buffer[: end + 4])
        elif len(self.buffer) > _MAX_PROXY_HEAD and not self.done.done():
            self.done.set_exception(UpstreamConnectionError("proxy answer too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(UpstreamConnectionError("proxy closed the connection"))


async def _tunnel(
    factory: Callable[[], Connection],
    origin: Origin,
    addresses: Sequence[str] | None,
    proxy: Proxy,
    tls: ssl.SSLContext | None,
) -> Connection:
    loop = asyncio.get_running_loop()
    transport, head = await loop.create_connection(_TunnelHead, proxy.host, proxy.port)
    try:
        target = addresses[0] if addresses else origin.host  # pinned: the proxy resolves nothing
        authority = f"[{target}]:{origin.port}" if ":" in target else f"{target}:{origin.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = await head.done
        status_line = answer.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[1].startswith(b"2"):
            code = status_line[1].decode("latin-1", "replace")[:3] if len(status_line) > 1 else "?"
            raise UpstreamConnectionError(f"proxy {proxy.name} refused the tunnel ({code})")
        if len(head.buffer) > len(answer):
            raise UpstreamConnectionError(f"proxy {proxy.name} sent data before the origin")
        connection = factory()
        if tls is not None:
            transport = await loop.start_tls(
                transport, connection, tls, server_hostname=origin.host
            )
        else:
            transport.set_protocol(connection)
        connection.connection_made(transport)
        return connection
    except BaseException:
        transport.close()
        raise
