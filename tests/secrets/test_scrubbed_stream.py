"""The stream scrubber on its own: ordinary chunks pass untouched (the same object, no copy);
an error event is scrubbed wherever the chunk boundaries cut it, its marker included."""

from __future__ import annotations

import pytest
from spellings import leaked

from apex_ai_proxy.errors import carries_error
from apex_ai_proxy.relay import HELD_EVENT_BYTES, SameDialectStream, ScrubbedStream
from apex_ai_proxy.telemetry import Redactor

KEY = "sk-ant-api03/stream-KEY-0123456789"
CHUNK = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0}\n\n'
ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"key '
    + KEY.replace("-", "\\u002d").encode()
    + b' is over quota"}}\n\n'
)
# The key before the marker: scrubbing from the marker on would not be enough.
KEY_FIRST = (
    b'event: error\ndata: {"message":"key '
    + KEY.encode()
    + b' is over quota","error":{"type":"overloaded_error"}}\n\n'
)
MARKER_AT = KEY_FIRST.index(b'"error')


def scrubbed_stream() -> ScrubbedStream:
    inner = SameDialectStream("anthropic", "anthropic", strip_usage=False)
    return ScrubbedStream(inner, Redactor([KEY]).scrub_bytes)


def test_an_ordinary_chunk_passes_as_the_same_object() -> None:
    stream = scrubbed_stream()
    assert stream.feed(CHUNK) is CHUNK


@pytest.mark.parametrize("cut", range(ERROR.index(b'"error"') + len(b'"error"'), len(ERROR)))
def test_an_error_event_cut_anywhere_after_its_marker_is_scrubbed(cut: int) -> None:
    stream = scrubbed_stream()
    out = stream.feed(CHUNK) + stream.feed(ERROR[:cut]) + stream.feed(ERROR[cut:])
    out += stream.finish()
    assert not leaked(KEY, out)
    assert b"[REDACTED]" in out and out.startswith(CHUNK)


def test_an_unfinished_error_event_is_scrubbed_when_the_stream_breaks() -> None:
    stream = scrubbed_stream()
    out = stream.feed(ERROR[:-20]) + stream.error(502, "upstream stream broke")
    assert not leaked(KEY, out) and b"upstream stream broke" in out


@pytest.mark.parametrize("cut", range(MARKER_AT + 1, MARKER_AT + len(b'"error')))
def test_an_error_event_cut_inside_its_marker_is_scrubbed_whole(cut: int) -> None:
    stream = scrubbed_stream()
    out = stream.feed(CHUNK) + stream.feed(KEY_FIRST[:cut]) + stream.feed(KEY_FIRST[cut:])
    out += stream.finish()
    assert not leaked(KEY, out)
    assert b"[REDACTED]" in out and out.startswith(CHUNK)


def test_a_marker_cut_in_an_event_too_long_to_hold_is_still_found() -> None:
    event = b'data: {"pad":"' + b"x" * HELD_EVENT_BYTES + b'","error":{"message":"key '
    event += KEY.encode() + b'"}}\n\n'
    cut = event.index(b'"error') + 3
    stream = scrubbed_stream()
    out = stream.feed(event[:cut]) + stream.feed(event[cut:]) + stream.finish()
    assert not leaked(KEY, out)
    assert b"[REDACTED]" in out


@pytest.mark.parametrize("cut", [i + 1 for i, byte in enumerate(CHUNK) if byte == ord('"')])
def test_an_ordinary_event_cut_after_a_quote_arrives_whole_and_unchanged(cut: int) -> None:
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'  # not a cut stream
    stream = scrubbed_stream()
    out = stream.feed(CHUNK[:cut]) + stream.feed(CHUNK[cut:]) + stream.feed(stop)
    assert out + stream.finish() == CHUNK + stop


@pytest.mark.parametrize(
    "body",
    [
        b'{"errors":[{"code":10000,"message":"Authentication error"}],"success":false}',
        b'{"error":{"message":"bad"}}',
        b'{"error":"bad"}',
        b'{"error":null,"errors":[{"message":"bad"}]}',
        b'data: {"error_message":"bad"}\n\n',
    ],
)
def test_an_errors_list_or_error_field_counts_as_an_error(body: bytes) -> None:
    assert carries_error(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"resp_1","error":null,"output":[]}',
        b'{"id":"resp_1","error": null}',
        b'{"result":{},"errors":[],"messages":[],"success":true}',
        b'{"errors": [ ], "success": true}',
        b'{"errors" : null}',
        b'{"choices":[{"delta":{"content":"no trouble"}}]}',
    ],
)
def test_an_empty_error_field_does_not_count_as_an_error(body: bytes) -> None:
    assert not carries_error(body)
