"""The stream scrubber on its own: ordinary chunks pass untouched (the same object, no copy);
an error event is scrubbed wherever the chunk boundaries cut it after its marker."""

from __future__ import annotations

import pytest
from spellings import leaked

from apex_ai_proxy.relay import SameDialectStream, ScrubbedStream
from apex_ai_proxy.telemetry import Redactor

KEY = "sk-ant-api03/stream-KEY-0123456789"
CHUNK = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0}\n\n'
ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"key '
    + KEY.replace("-", "\\u002d").encode()
    + b' is over quota"}}\n\n'
)


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
