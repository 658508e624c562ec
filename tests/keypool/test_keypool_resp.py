"""The ledger's lean Redis connection (keypool/resp.py): its wire format, and against real
redis-servers: AUTH and SELECT from the URL, a script Redis forgot, a Redis that never answers,
and the settle the pool sends without waiting."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from fakes.ports import free_port
from fakes.redis_server import RedisServer
from redis.asyncio import Redis

from apex_ai_proxy.keypool.config import Limits
from apex_ai_proxy.keypool.ledger import Candidate, Reservation
from apex_ai_proxy.keypool.redis_ledger import RedisLedger
from apex_ai_proxy.keypool.resp import RespConnection, RespError, _Incomplete, pack, parse
from apex_ai_proxy.state.redis_client import redis_client


def cand(unit: str, **limits: object) -> Candidate:
    return Candidate.of(unit, Limits(**limits))


def test_a_command_is_an_array_of_bulk_strings():
    assert pack(("EVALSHA", "ab", 2, 1.5, "é", 0.1 + 0.2)) == (
        b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$3\r\n1.5\r\n$2\r\n\xc3\xa9\r\n"
        b"$19\r\n0.30000000000000004\r\n"
    )


def test_replies_parse_whole_and_never_from_a_part():
    wire = b"*4\r\n:3\r\n$5\r\nhe\r\no\r\n$-1\r\n*1\r\n+OK\r\n-NOSCRIPT gone\r\n"
    reply, pos = parse(wire, 0)
    assert reply == [3, b"he\r\no", None, [b"OK"]]
    error, end = parse(wire, pos)
    assert isinstance(error, RespError) and str(error) == "NOSCRIPT gone"
    assert end == len(wire)
    for cut in range(1, pos):  # a reply split anywhere by the network waits for the rest
        with pytest.raises(_Incomplete):
            parse(wire[:cut], 0)


async def test_the_lean_connection_authenticates_and_selects_the_db_of_the_url(tmp_path):
    server = await RedisServer(tmp_path / "redis").start()
    admin = server.client()
    password = uuid.uuid4().hex
    await admin.config_set("requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{server.port}/3"
    ledger = RedisLedger(url, "apex-test:")
    authed = Redis.from_url(url)
    try:
        assert isinstance(await ledger.reserve([cand("p#0|m", rpm=5)], 10), Reservation)
        assert ledger.fallbacks == 0
        assert await authed.exists("apex-test:u:p#0|m") == 1  # in db 3, not db 0
    finally:
        await ledger.close()
        await authed.aclose()
        await admin.aclose()
        await server.stop()


async def test_a_settle_sent_without_waiting_survives_a_script_flush(tmp_path):
    """The pool's settle goes out without waiting; when Redis lost the script in between it
    comes back NOSCRIPT, and the settle is loaded and sent again: the counts stay exact."""
    server = await RedisServer(tmp_path / "redis").start()
    admin = server.client()
    ledger = RedisLedger(server.url, "apex-test:")
    key = cand("p#0|m", tpm=1000)
    try:
        reservation = await ledger.reserve([key], 100)
        assert isinstance(reservation, Reservation) and reservation.backend == "redis"
        await admin.script_flush()
        assert ledger.settle_nowait(reservation, 40)
        deadline = time.monotonic() + 5
        while (await ledger.snapshot([key]))[0].minute_tokens != 40:
            assert time.monotonic() < deadline, await ledger.snapshot([key])
            await asyncio.sleep(0.02)
        assert ledger.fallbacks == 0
    finally:
        await ledger.close()
        await admin.aclose()
        await server.stop()


async def test_settles_sent_without_waiting_are_applied_in_order_before_close(tmp_path):
    server = await RedisServer(tmp_path / "redis").start()
    ledger = RedisLedger(server.url, "apex-test:")
    key = cand("p#0|m", tpm=10**6, max_parallel=50)
    try:
        held = [await ledger.reserve([key], 100) for _ in range(20)]
        assert all(ledger.settle_nowait(r, 7) for r in held)  # type: ignore[arg-type]
        await ledger.close()  # waits for the replies
        fresh = RedisLedger(server.url, "apex-test:")
        view = (await fresh.snapshot([key]))[0]
        await fresh.close()
        assert (view.minute_tokens, view.minute_requests, view.in_flight) == (140, 20, 0)
    finally:
        await server.stop()


async def test_a_redis_that_never_answers_is_left_for_local_state_within_the_timeout():
    """Accepts the connection, reads, never replies: the reservation is served locally after
    the command timeout, not after minutes."""
    accepted: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        while await reader.read(4096):
            pass

    port = free_port()
    server = await asyncio.start_server(mute, "127.0.0.1", port)
    url = f"redis://127.0.0.1:{port}"
    ledger = RedisLedger(url, "apex-test:", client=redis_client(url, command_timeout=0.2))
    try:
        started = time.monotonic()
        result = await ledger.reserve([cand("p#0|m", rpm=5)], 10)
        assert time.monotonic() - started < 2
        assert isinstance(result, Reservation) and result.backend == "local"
        assert ledger.fallbacks == 1
        assert not ledger.settle_nowait(result, 10)  # local: settled the usual way
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        await ledger.close()


async def test_urls_the_lean_connection_does_not_speak_stay_on_redis_py():
    assert RespConnection.for_client(Redis.from_url("rediss://127.0.0.1:6390/0")) is None
    assert RespConnection.for_client(Redis.from_url("unix:///tmp/none.sock")) is None
    lean = RespConnection.for_client(Redis.from_url("redis://u:p@10.0.0.1:6391/4"))
    assert lean is not None
    assert (lean.host, lean.port, lean.username, lean.password, lean.db) == (
        "10.0.0.1",
        6391,
        "u",
        "p",
        4,
    )
