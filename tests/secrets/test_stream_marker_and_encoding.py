"""Probe of the item-3/4 fixes where the scrub could not see the key: a stream chunk boundary
inside the `"error"` marker itself, an error object spelled `"errors"`, and an error body the
upstream gzip-compressed although nobody asked it to."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
from fakes.careless_upstream import CarelessUpstream, Events, Whole
from secrets_support import KEYS, TOKEN, config, send
from spellings import leaked
from test_stream_error_key_echo import OPENAI_CHUNK


def _gunzipped(data: bytes) -> bytes:
    """`data`, and inside it any gzip stream a client could decompress."""
    start = data.find(b"\x1f\x8b")
    if start < 0:
        return data
    try:
        return data + zlib.decompressobj(31).decompress(data[start:])
    except zlib.error:
        return data


@pytest.mark.parametrize("cut", range(1, 7))
async def test_a_chunk_boundary_inside_the_error_marker_leaks_no_key(
    gateway, tmp_path: Path, cut: int
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        key = KEYS["openai"]
        event = b'data: {"error":{"message":"Quota exceeded for key ' + key.encode() + b'"}}\n\n'
        at = event.index(b'"error"') + cut
        upstream.queue(Events((OPENAI_CHUNK, event[:at], event[at:])))
        # Usage asked for: the usage-chunk stripper (which joins events) is not in the way.
        body = {
            "model": "m-openai",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}],
        }
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with gw.http().post("/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status == 200
            answer = await response.read()
        assert not leaked(key, answer), answer
    finally:
        await upstream.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_an_errors_list_in_a_200_answer_leaks_no_key(
    gateway, tmp_path: Path, stream: bool
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        key = KEYS["openai"]
        errors = b'{"success":false,"errors":[{"code":10000,"message":"bad key ' + key.encode()
        errors += b'"}]}'
        if stream:
            upstream.queue(Events((OPENAI_CHUNK, b"data: " + errors + b"\n\n")))
        else:
            upstream.queue(Whole(200, errors))
        _, answer = await send(gw, "chat", "openai", stream=stream)
        assert not leaked(key, answer), answer
    finally:
        await upstream.stop()


async def test_a_gzip_error_body_from_the_upstream_leaks_no_key(gateway, tmp_path: Path) -> None:
    status = 400  # relayed as it is (a 401 becomes the 503 list: the gzip bytes do not survive)
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        key = KEYS["openai"]
        body = gzip.compress(
            b'{"error":{"message":"Incorrect API key provided: ' + key.encode() + b'"}}'
        )
        upstream.queue(Whole(status, body, (("Content-Encoding", "gzip"),)))
        got, answer = await send(gw, "chat", "openai")
        assert got == (503 if status == 401 else 400), answer
        assert not leaked(key, _gunzipped(answer)), answer
    finally:
        await upstream.stop()
