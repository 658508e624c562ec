"""The one SSE parser: whole events whatever the chunk boundaries, every framing upstreams use."""

from __future__ import annotations

import random

from apex_ai_proxy.sse import SSEParser

STREAM = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"b":2}\n\n'
    b'data:{"c":3}\n\n'  # no space after the colon
    b"event: x\ndata: line1\ndata: line2\n\n\n\n"  # multi-line data, extra blank lines
    b'data: {"d":4}\r\n\r\n'  # CRLF
    b"data: caf\xc3\xa9\n\n"  # a multi-byte character, split below at every offset
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message_start", '{"a":1}'),
    (None, '{"b":2}'),
    (None, '{"c":3}'),
    ("x", "line1\nline2"),
    (None, '{"d":4}'),
    (None, "café"),
    (None, "[DONE]"),
]


def parse(chunks: list[bytes]) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.flush()
    return [(e.event, e.data) for e in events]


def test_whole_stream_in_one_chunk():
    assert parse([STREAM]) == EXPECTED


def test_every_single_split_point():
    for cut in range(1, len(STREAM)):
        assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_byte_by_byte():
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_random_chunkings():
    rng = random.Random(7)
    for _ in range(500):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(2, 15)))
        parts = [STREAM[i:j] for i, j in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert parse(parts) == EXPECTED


def test_stream_ending_without_final_blank_line_is_flushed():
    assert parse([b'data: {"x":1}\n']) == [(None, '{"x":1}')]


def test_crlf_split_between_cr_and_lf():
    assert parse([b"data: 1\r", b"\n\r", b"\n"]) == [(None, "1")]
