"""Differential tests against h11: generated upstream response byte streams are written by a raw
loopback server to our client, and fed to h11's client-side Connection. Where h11 rejects a
stream, ours must raise UpstreamConnectionError; where both accept, status, headers and body
agree. (Ours may be stricter than h11: llhttp refuses a few shapes h11 tolerates.)"""

from __future__ import annotations

import asyncio

import h11
import pytest
from client_support import Close, RawUpstream, client, timeouts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apex_ai_proxy.http import UpstreamConnectionError

NAMES = ["x-a", "X-Dup", "Content-Type", "cache-control", "x-empty"]
VALUE = st.text(alphabet="abcXYZ 09-_/=;,.", max_size=12)
BODY = st.binary(max_size=40)


@st.composite
def framing(draw, body: bytes) -> tuple[list[bytes], bytes]:
    """(framing header lines, body bytes on the wire) for one of the RFC 9112 framings, or a
    broken variant of it."""
    kind = draw(
        st.sampled_from(
            ["length", "chunked", "close", "bad-length", "two-lengths", "bad-chunk", "both"]
        )
    )
    if kind == "length":
        return [b"Content-Length: %d" % len(body)], body
    if kind == "bad-length":
        value = draw(st.sampled_from([b"+%d", b"%d, 1", b"-%d", b"0x%d", b"%d.0", b" %d "]))
        return [b"Content-Length: " + (value % len(body) if b"%" in value else value)], body
    if kind == "two-lengths":
        other = draw(st.sampled_from([len(body), len(body) + 1]))
        return [b"Content-Length: %d" % len(body), b"Content-Length: %d" % other], body
    if kind == "close":
        return [], body
    wire = _chunked(draw, body)
    if kind == "bad-chunk":
        wire = draw(st.sampled_from([b"zz\r\n", b"-1\r\n", b"5\r\nabc\r\n", b"3\r\nabcd"])) + wire
    if kind == "both":
        return [b"Transfer-Encoding: chunked", b"Content-Length: %d" % len(wire)], wire
    coding = draw(st.sampled_from([b"chunked", b"Chunked", b"gzip, chunked", b"identity"]))
    return [b"Transfer-Encoding: " + coding], wire


def _chunked(draw, body: bytes) -> bytes:
    out = b""
    rest = body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        piece, rest = rest[:size], rest[size:]
        extension = draw(st.sampled_from([b"", b";a=b", b";x", b';q="v"']))
        out += b"%x%s\r\n%s\r\n" % (len(piece), extension, piece)
    trailers = draw(st.sampled_from([b"", b"x-t: 1\r\n", b"x-t: 1\r\nx-u: 2\r\n"]))
    return out + b"0\r\n" + trailers + b"\r\n"


@st.composite
def responses(draw) -> bytes:
    body = draw(BODY)
    status = draw(st.sampled_from([200, 201, 204, 304, 404, 500, 599]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    reason = draw(st.sampled_from([b" OK", b" ", b" Odd Reason", b""]))
    lines = [b"%s %d%s" % (version, status, reason)]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(NAMES)).encode()
        lines.append(name + b": " + draw(VALUE).encode())
    if draw(st.booleans()):  # a malformed header line
        lines.append(draw(st.sampled_from([b"no colon here", b"bad name: v", b": empty-name"])))
    framing_lines, wire = draw(framing(body))
    lines[1:1] = framing_lines
    interim = draw(
        st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 E\r\n\r\n"])
    )
    cut = draw(st.sampled_from([None, 1, 5]))  # sometimes the upstream closes early
    data = interim + b"\r\n".join(lines) + b"\r\n\r\n" + wire
    return data[: len(data) - cut] if cut and cut < len(data) else data


def h11_reading(data: bytes):
    """h11's reading of `data` followed by a close: (status, headers, body) or None (rejected)."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "up")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(data)
    connection.receive_data(b"")
    status, headers, body = None, None, b""
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers]
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body
            elif event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                return None
    except h11.RemoteProtocolError:
        return None


async def our_reading(data: bytes):
    async with RawUpstream(lambda r: Close(data)) as upstream:
        http = client()
        try:
            response = await http.send("GET", upstream.url + "/", {}, None, timeouts(total=3))
            body = await response.read()
        except UpstreamConnectionError:
            return None
        finally:
            await http.close()
    headers = [(name.lower(), value) for name, value in response.raw_headers]
    return response.status, headers, body


@pytest.fixture(scope="module")
def loop():
    """One event loop for every example (a loop per example costs more than the example); it
    is never made the thread's current loop, so the suite's own loop is left alone."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=True,
)
@given(responses())
def test_client_agrees_with_h11_on_generated_responses(loop, data):
    reference = h11_reading(data)
    ours = loop.run_until_complete(our_reading(data))
    if reference is None:
        assert ours is None, f"h11 rejects, we accepted {ours!r}"
    elif ours is not None:
        assert _normalised(ours) == _normalised(reference)


def _normalised(reading):
    """h11 lower-cases Transfer-Encoding values (a coding name is case-insensitive)."""
    status, headers, body = reading
    lowered = [(n, v.lower() if n == "transfer-encoding" else v) for n, v in headers]
    return status, lowered, body
