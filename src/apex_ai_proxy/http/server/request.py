"""What a handler gets (Request, Headers), and the request-target forms the server accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from .protocol import HttpProtocol


class Headers(dict):
    """Request headers: names stored lower-case, looked up case-insensitively; repeats joined."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name.lower() if isinstance(name, str) else name)

    def copy(self) -> Headers:
        return Headers(self)


class Request:
    """One request. Built when its head is complete; `body` is filled when the message is.

    `disconnected` turns True when the client closes (or half-closes) its connection before the
    answer is written: work that costs something (an upstream call) should not start then.
    """

    __slots__ = (
        "method",
        "path",
        "query_string",
        "raw_path_qs",
        "headers",
        "body",
        "too_large",
        "keep_alive",
        "disconnected",
        "match_info",
        "app",
        "_protocol",
        "_query",
    )

    def __init__(self, method: str, path_qs: str, headers: Headers, protocol: HttpProtocol) -> None:
        self.method = method
        self.raw_path_qs = path_qs  # origin-form: always starts with "/"
        path, _, query = path_qs.partition("?")
        self.path = path
        self.query_string = query
        self.headers = headers
        self.body = b""
        self.too_large = False  # the body went over the server's limit and was not kept
        self.keep_alive = True
        self.disconnected = False
        self.match_info: dict[str, str] = {}
        self.app: Any = protocol.server.app
        self._protocol = protocol
        self._query: dict[str, str] | None = None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    async def read(self) -> bytes:
        return self.body

    def close_connection(self) -> None:
        """Drop the client connection (a relayed body was cut: the client must see it)."""
        self._protocol.close()


# Header names as sent -> lower-case str: clients send the same few names on every request;
# one lookup instead of a decode and a lower() (two new strings) per field. Bounded: names
# are the client's to choose.
HEADER_KEYS: dict[bytes, str] = {}


def header_key(raw: bytes) -> str:
    key = raw.decode("latin-1").lower()
    if len(raw) <= 64 and len(HEADER_KEYS) < 1024:  # at most 64 KiB, whatever clients send
        HEADER_KEYS[raw] = key
    return key


class Refusal(Exception):
    """The request is not one this server serves: `status` says how to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def origin_form(method: str, target: str) -> str:
    """The path and query of `target` (RFC 9112 §3.2): origin-form as it is, absolute-form
    (`http://host/p?q`, §3.2.2) reduced to its path and query. Raises Refusal for the
    asterisk-form (`*`, the caller answers OPTIONS itself), the authority-form of CONNECT
    and anything else."""
    if method == "CONNECT":  # whatever its target: a tunnel is never opened here
        raise Refusal(501, "CONNECT is not supported: this server is not a forward proxy.")
    if target[:1] == "/":
        return target
    if target == "*":
        raise Refusal(400, "The request target '*' is only valid with OPTIONS.")
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        authority, path_qs = rest[:cut], rest[cut:]
        if authority and "@" not in authority:  # userinfo is deprecated: RFC 9110 §4.2.4
            return path_qs if path_qs[:1] == "/" else "/" + path_qs
    raise Refusal(400, "The request target must be a path such as /v1/chat/completions.")


def check_head(version: str, headers: dict[str, str], repeated: dict | None) -> None:
    """Raises Refusal unless the version, Host, Transfer-Encoding and Upgrade are acceptable.
    `headers` are the lower-case names; `repeated` the names that came more than once."""
    if version != "1.1" and version != "1.0":
        if version == "0.9":  # no version at all: `GET /`
            raise Refusal(400, "The request line has no HTTP version.")
        raise Refusal(505, "Only HTTP/1.0 and HTTP/1.1 are supported.")
    get = dict.get
    if version == "1.1" and (get(headers, "host") is None or (repeated and "host" in repeated)):
        # RFC 9112 §3.2: a MUST.
        raise Refusal(400, "HTTP/1.1 requests need exactly one Host header.")
    coding = get(headers, "transfer-encoding")
    if coding is not None and coding.lower() != "chunked":  # RFC 9112 §6.1: 501
        raise Refusal(501, "Only Transfer-Encoding: chunked is supported.")
    if get(headers, "upgrade") is not None and "upgrade" in get(headers, "connection", "").lower():
        raise Refusal(501, "Protocol upgrades are not supported.")
