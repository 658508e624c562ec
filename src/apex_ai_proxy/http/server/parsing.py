"""The httptools parser's callbacks for one connection (a part of HttpProtocol, protocol.py):
building each Request from its head and body, with every limit checked as the bytes arrive.

A mixin only to keep protocol.py readable: the state it reads and writes is HttpProtocol's
(declared in its __slots__), and nothing else uses this class.
"""

from __future__ import annotations

from .request import (
    HEADER_KEYS,
    Headers,
    Refusal,
    Request,
    check_head,
    header_key,
    origin_form,
)
from .responses import Response

IDLE, HEAD, BODY = 0, 1, 2
_has = dict.__contains__
# a request with none of these (and one Host, HTTP/1.1, an origin-form target) needs no checks
_HEAD_CHECKED = ("transfer-encoding", "upgrade")
NEVER = float("inf")
PIPELINE_HARD_FACTOR = 64  # requests one read may queue: this many times max_pipelined


class _Refused(Exception):
    """Raised in a parser callback: stop parsing, answer `response` (None: just close)."""

    def __init__(self, response: Response | None) -> None:
        super().__init__()
        self.response = response


class ParserCallbacks:
    __slots__ = ()

    def on_message_begin(self) -> None:
        self._phase = HEAD
        limits = self.limits
        self.deadline = self.server.clock + limits.header_timeout
        self._headers = Headers()
        self._multi = None
        self._url = b""
        # what the head may still hold: counted down per field (one subtraction, one compare)
        self._fields_left = limits.max_header_count
        self._bytes_left = limits.max_header_bytes
        self._head_raw = 0
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_target:
            raise _Refused(self._error(414, "The request target is too long."))

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called once per field of every request: kept to the fewest operations that do the job.
        # Bytes are counted here; fields with a new name are counted once the head is complete
        # (len(headers)), repeats and trailers as they come (a flood of them is refused at once).
        bytes_left = self._bytes_left = self._bytes_left - len(name) - len(value) - 4
        if bytes_left < 0:
            raise _Refused(self._too_many())
        if self._phase != HEAD:  # a chunked body's trailer: counted, never merged into headers
            self._count_field(0)
            return
        key = HEADER_KEYS.get(name)
        if key is None:
            key = header_key(name)
        # llhttp drops the leading whitespace of a value, not the trailing (RFC 9110 §5.5: both).
        text = value.rstrip(b" \t").decode("latin-1")
        headers = self._headers
        # `in` and `[]=` on Headers: dict's own slots (only `get`/`[]`/`in` with a str are
        # overridden, and `_has` is dict's C `__contains__`), no Python-level call per field.
        if not _has(headers, key):
            headers[key] = text
            return
        # Repeats are joined once the head is complete: joining as they come is quadratic.
        self._count_field(len(headers))
        multi = self._multi
        if multi is None:
            multi = self._multi = {}
        if key in multi:
            multi[key].append(text)
        else:
            multi[key] = [dict.__getitem__(headers, key), text]

    def _count_field(self, uncounted: int) -> None:
        """One more field than the names in `headers` (a repeat, a trailer); `uncounted`: the
        new names not yet taken from `_fields_left` (those of a head still being read)."""
        self._fields_left -= 1
        if self._fields_left < uncounted:
            raise _Refused(self._too_many())

    def _too_many(self) -> Response:
        return self._error(431, "Request header fields are too large.")

    def on_headers_complete(self) -> None:
        self._phase = BODY
        server = self.server
        self.deadline = server.clock + self.limits.body_timeout
        headers = self._headers
        # the fields with a new name, counted now: `_fields_left` holds the repeats' count
        self._fields_left -= len(headers)
        if self._fields_left < 0:
            raise _Refused(self._too_many())
        if self._multi is not None:
            for key, values in self._multi.items():
                dict.__setitem__(headers, key, ", ".join(values))
        parser = self.parser
        method = parser.get_method().decode("ascii")
        target = self._url.decode("latin-1")
        if (  # the usual request, which check_head and origin_form accept as it is
            target[:1] == "/"
            and self._multi is None
            and method != "CONNECT"
            and _has(headers, "host")
            and headers.keys().isdisjoint(_HEAD_CHECKED)
            and parser.get_http_version() == "1.1"
        ):
            request = Request(method, target, headers, self)
        else:
            request = Request(method, self._path(method, target), headers, self)
        request.keep_alive = parser.should_keep_alive()
        self._request = request
        length = dict.get(headers, "content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_body:
            self._too_large = True
        expect = dict.get(headers, "expect")
        if expect is not None and expect.lower() == "100-continue" and length != "0":
            if self._current is not None or self._pending:
                self._continue_due = request  # answered when its turn comes
            else:
                refusal = self._check_continue(request)
                if refusal is not None:
                    raise _Refused(refusal)

    def _path(self, method: str, target: str) -> str:
        """The request's origin-form path, once its head is acceptable (request.py says what is)."""
        try:
            check_head(self.parser.get_http_version(), self._headers, self._multi)
            if method == "OPTIONS" and target == "*":
                headers = self._headers
                if "transfer-encoding" in headers or headers.get("content-length", "0") != "0":
                    # Answered from its head alone, so a body would be left unread (and unchecked:
                    # h11 refuses a broken one that we would have answered 200).
                    raise Refusal(400, "OPTIONS * takes no request body.")
                raise _Refused(_options_star())
            return origin_form(method, target)
        except Refusal as refusal:
            raise _Refused(self._error(refusal.status, refusal.message)) from None

    def on_body(self, body: bytes) -> None:
        self.deadline = self.server.clock + self.limits.body_timeout
        if self._too_large:
            return
        self._body_size += len(body)
        if self._body_size > self.limits.max_body:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._phase = IDLE
        self.deadline = NEVER  # until its answer is written
        request = self._request
        self._request = None
        if request is None:  # pragma: no cover - httptools always completes the head first
            raise _Refused(self._error(400, "Malformed HTTP request."))
        body = self._body
        request.body = body[0] if len(body) == 1 else b"".join(body)
        request.too_large = self._too_large
        if self._too_large:
            request.keep_alive = False
        if not request.keep_alive:
            self._dead = True  # nothing after a request that closes the connection is read
        if self._current is None:
            self._start(request)
            return
        pending = self._pending
        limit = self.limits.max_pipelined
        # Reading pauses once `limit` requests wait, but httptools cannot stop in the middle of
        # a read: what one read holds is queued too, up to a hard cap; past it, those queued are
        # answered and the connection closes (a pipelining client retries the rest).
        if len(pending) >= limit * PIPELINE_HARD_FACTOR:
            raise _Refused(None)
        pending.append(request)
        if len(pending) >= limit:
            self._pause_reading()


def _options_star() -> Response:
    """`OPTIONS *` asks about the server itself (RFC 9110 §9.3.7)."""
    return Response(200, headers={"allow": "GET, HEAD, POST, DELETE, OPTIONS"})
