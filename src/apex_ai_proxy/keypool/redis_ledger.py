"""The quota ledger on Redis: one ledger for every replica and worker that shares the prefix.

Each check-and-reserve is ONE EVALSHA: a Lua script that reads the server's clock
(`redis.call('TIME')`, so replicas with skewed clocks still agree on the minute), walks the
candidates in the caller's order and reserves on the first whose every bucket has room, all or
nothing. Per unit it keeps one hash `<prefix>u:<unit>`:

    m:<bucket> / t:<bucket>   requests / tokens counted in a 5-second bucket (keypool/limits.py)
    r:<day> / u:<day>         requests / tokens of the day starting at <day> (epoch seconds)
    p:<reservation id>        a parallel slot, its value the lease's expiry (a crashed process's
                              slot frees itself)

and the learned state in `<prefix>s:<unit>` (state, until, reason, recent). Stale fields are
dropped by the script that finds them; every key has a TTL.

Requests that find plenty of room take a grant beside them (keypool/grants.py): the unit's next
requests in this process are served without a round trip, and the rest is refunded within a
second. Near a limit grants shrink to nothing: every request is one EVALSHA again.

Redis down (refused, timed out, any Redis error): the call is served by an in-process
LocalLedger instead, with one warning per outage and `fallbacks` counting the calls; Redis is
tried again after a growing wait (state/redis_client.Backoff), so an outage never costs every
request a connect attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from apex_ai_proxy.keypool.grants import GRANT_SHARE, GRANTED, GrantBook
from apex_ai_proxy.keypool.ledger import (
    DEFAULT_LEASE_S,
    Candidate,
    LocalLedger,
    Refusal,
    Reservation,
    UnitView,
    clamp_lease,
    new_reservation_id,
    settle_delta,
    unit_view,
)
from apex_ai_proxy.keypool.limits import (
    BUCKET_S,
    MINUTE_S,
    clamp_tokens,
    day_window,
    oldest_live_bucket,
)
from apex_ai_proxy.keypool.redis_scripts import RESERVE_LUA, SETTLE_LUA
from apex_ai_proxy.keypool.resp import RespConnection, RespError
from apex_ai_proxy.keypool.signals import MAX_HORIZON_S, Signal, Verdict
from apex_ai_proxy.keypool.state import DEFAULT_POLICY, OK_STATUS, KeyState, KeyStatus, Policy
from apex_ai_proxy.keypool.state import transition as next_status
from apex_ai_proxy.state.config import redacted_redis_url
from apex_ai_proxy.state.redis_client import Backoff, redis_client

log = logging.getLogger("apex_ai_proxy")
STATUS_GRACE_S = 60.0  # a learned state's hash outlives its `until` by this much
T = TypeVar("T")


class RedisLedger:
    backend = "redis"

    def __init__(
        self,
        redis_url: str,
        key_prefix: str,
        policy: Policy = DEFAULT_POLICY,
        client: Redis | None = None,
    ) -> None:
        self.policy = policy
        self.prefix = key_prefix
        self.redis = client if client is not None else redis_client(redis_url)
        self.local = LocalLedger(policy)  # while Redis does not answer
        self.fallbacks = 0  # calls served locally because Redis failed
        self._where = redacted_redis_url(redis_url)
        self._down = False
        self._retry_at = 0.0  # time.monotonic(): Redis is not tried again before
        self._backoff = Backoff()
        self._reserve = self.redis.register_script(RESERVE_LUA)
        self._settle = self.redis.register_script(SETTLE_LUA)
        self._known: dict[str, KeyStatus] = {}  # last status read or written, per unit
        #: The two scripts on every request go over a lean pipelined connection (keypool/resp.py);
        #: None when the URL needs what it does not speak (TLS, unix socket): redis-py then.
        self._conn = RespConnection.for_client(self.redis)
        self._resends: set[asyncio.Task] = set()  # settles sent again after a NOSCRIPT
        self.grants = GrantBook(self._refund)  # quota reserved ahead for this process
        self._refills: set[asyncio.Task] = set()

    def _usage_key(self, unit: str) -> str:
        return f"{self.prefix}u:{unit}"

    def _status_key(self, unit: str) -> str:
        return f"{self.prefix}s:{unit}"

    async def reserve(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float = DEFAULT_LEASE_S
    ) -> Reservation | Refusal:
        tokens = clamp_tokens(tokens)
        if not candidates:
            return Refusal(time.time(), "no_candidates")

        served = self.reserve_nowait(candidates[0], tokens)
        if served is not None:
            return served
        lease_s = clamp_lease(lease_s)  # after the grant: a granted request holds no lease
        if not self._down:
            try:
                return await self._reserve_remote(candidates, tokens, lease_s)
            except (RedisError, OSError) as exc:
                self._failed(exc)
                return await self.local.reserve(candidates, tokens, lease_s)
        return await self._guarded(
            lambda: self._reserve_remote(candidates, tokens, lease_s),
            lambda: self.local.reserve(candidates, tokens, lease_s),
        )

    def reserve_nowait(self, c: Candidate, tokens: int) -> Reservation | None:
        """`reserve` on one candidate without waiting for Redis, when that is possible now: from
        this process's grant for it (the next one asked for once it is half served). None:
        nothing done, `reserve` instead. `tokens` is the caller's count, 0 to MAX_LIMIT (what
        `reserve` clamps it to): not checked again."""
        if self._down:
            return None
        served = self.grants.serve(c, tokens)
        if served is not None and self.grants.held[c.unit].low and c.unit not in self.grants.asking:
            self._refill(c, tokens)
        return served

    async def _reserve_remote(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float, refill: int = 0
    ) -> Reservation | Refusal:
        """One EVALSHA. `refill` > 0: the reservation is this process's next grant of that many
        (asked for already), not a request."""
        keys, args, days, asking = self._reserve_args(candidates, tokens, lease_s, refill)
        try:
            reply = await self._run(self._reserve, keys, args)
            return self._reserved(candidates, reply, str(args[3]), tokens, days, refill)
        finally:
            self.grants.done(asking)

    def _reserved(
        self,
        candidates: Sequence[Candidate],
        reply: list,
        rid: str,
        tokens: int,
        days: list[int],
        refill: int,
    ) -> Reservation | Refusal:
        """The script's reply: a Refusal, or the Reservation (and the grant beside it kept)."""
        index = int(reply[0])
        if index == 0:
            now = time.time()
            retry_at = float(reply[1])
            if not now <= retry_at <= now + MAX_HORIZON_S:  # the past, too far, or nan
                retry_at = now if not retry_at > now else now + MAX_HORIZON_S
            return Refusal(retry_at, _text(reply[2]))
        chosen = candidates[index - 1]
        reservation = Reservation(
            chosen.unit, rid, tokens, int(reply[1]), days[index - 1], float(reply[2]), self.backend
        )
        if len(reply) > 3 and (refill or int(reply[3]) > 0):
            extra, extra_tokens, ms_left = int(reply[3]), int(reply[4]), int(reply[5])
            self.grants.keep(chosen, reservation, extra, extra_tokens, ms_left, own=not refill)
        return reservation

    def _refill(self, c: Candidate, tokens: int) -> None:
        """The unit's grant is half served: the next is reserved in the background (the
        reservation itself becomes part of it), so busy units never run dry."""
        want = self.grants.ask(c)  # marked now: a drop before the task runs voids it
        if not want:
            return
        task = asyncio.get_running_loop().create_task(self._refill_now(c, tokens, want))
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _refill_now(self, c: Candidate, tokens: int, want: int) -> None:
        try:
            await self._reserve_remote([c], tokens, DEFAULT_LEASE_S, refill=want)
        except (RedisError, OSError) as exc:
            if not self._down:  # a request may have noticed the outage first
                self._failed(exc)

    def _refund(self, unit: str, bucket: int, day: int, requests: int, tokens: int) -> None:
        """Requests and tokens a grant did not serve, back to the bucket and day they were
        counted in. Redis unreachable: dropped (they expire there with the minute or day)."""
        conn = self._conn
        if conn is None or self._down or not conn.ready:
            return
        key = self._usage_key(unit)
        args = [bucket, day, -tokens, -requests, ""]
        send = functools.partial(self._settle_replied, key, args)
        conn.send(send, "EVALSHA", self._settle.sha, 1, key, *args)

    def _reserve_args(
        self, candidates: Sequence[Candidate], tokens: int, lease_s: float, refill: int = 0
    ) -> tuple[list[str], list[str | int | float], list[int], list[str]]:
        """The script's keys and arguments, the days counted in, and the units this call asks
        a grant for (one call in flight per unit asks: concurrent requests would each take one,
        replacing each other's)."""
        now = time.time()
        keys: list[str] = []
        days: list[int] = []
        args: list[str | int | float] = [
            len(candidates),
            tokens,
            lease_s,
            new_reservation_id(),
            self.policy.invalid_probe_s,
            BUCKET_S,
            MINUTE_S,
            GRANT_SHARE,
        ]
        prefix = self.prefix
        asking: list[str] = []
        ask = self.grants.ask
        for c in candidates:
            keys += (f"{prefix}u:{c.unit}", f"{prefix}s:{c.unit}")  # _usage_key, _status_key
            # The day is cut by this process's clock (Lua has no time zones): near midnight a
            # skewed replica may count a request into the neighbouring day.
            start, end = day_window(now, c.timezone)
            want = refill or ask(c)
            if want:
                asking.append(c.unit)
            args += (*c.limits, start, repr(end), want)
            days.append(start)
        return keys, args, days, asking

    async def settle(self, reservation: Reservation, used_tokens: int | None) -> None:
        if reservation.backend == GRANTED and self.grants.settle(reservation, used_tokens):
            return
        if reservation.backend == LocalLedger.backend:
            await self.local.settle(reservation, used_tokens)
            return
        key = self._usage_key(reservation.unit)
        args = _settle_args(reservation, used_tokens)

        async def remote() -> None:
            await self._run(self._settle, [key], args)

        async def dropped() -> None:
            return None  # its reservation lives in Redis; the lease expires there

        await self._guarded(remote, dropped)

    def settle_nowait(self, reservation: Reservation, used_tokens: int | None) -> bool:
        """`settle` without waiting for Redis, when that is possible now: written to the open
        connection, ahead of any later reservation on it, its reply only looked at for a script
        Redis lost (NOSCRIPT: loaded and sent again). False: nothing done, `settle` instead.
        The pool settles this way so that a request costs Redis a single round trip."""
        if reservation.backend == GRANTED and self.grants.settle(reservation, used_tokens):
            return True
        conn = self._conn
        if conn is None or self._down or not conn.ready or reservation.backend == "local":
            return False
        key = self._usage_key(reservation.unit)
        args = _settle_args(reservation, used_tokens)
        send = functools.partial(self._settle_replied, key, args)
        conn.send(send, "EVALSHA", self._settle.sha, 1, key, *args)
        return True

    def _settle_replied(self, key: str, args: list, reply: object) -> None:
        if isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT"):
            task = asyncio.get_running_loop().create_task(self._resettle(key, args))
            self._resends.add(task)
            task.add_done_callback(self._resends.discard)
        # Any other failure: dropped, as a settle in an outage is (the lease expires in Redis).

    async def _resettle(self, key: str, args: list) -> None:
        async def remote() -> None:
            await self._run(self._settle, [key], args)

        async def dropped() -> None:
            return None

        await self._guarded(remote, dropped)

    async def _run(self, script: AsyncScript, keys: list[str], args: list) -> object:
        """EVALSHA on the lean connection, loading the script when Redis does not know it (a
        fresh or flushed server); through redis-py when there is no lean connection."""
        conn = self._conn
        if conn is None:
            return await script(keys=keys, args=args)
        try:
            return await conn.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # Both scripts: the settle goes out without waiting for a reply, best not into NOSCRIPT.
        for known in (self._reserve, self._settle):
            await conn.call("SCRIPT", "LOAD", known.script)
        return await conn.call("EVALSHA", script.sha, len(keys), *keys, *args)

    # --- session affinity pins (dispatch/affinity.py), shared by every replica ------------------

    def _pin_key(self, session: str) -> str:
        # Sessions are client strings (user ids among them): stored by digest, bounded.
        digest = hashlib.sha256(session.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return f"{self.prefix}a:{digest}"

    async def get_pin(self, session: str) -> str | None:
        async def remote() -> str | None:
            key = self._pin_key(session)
            conn = self._conn
            found = await (conn.call("GET", key) if conn is not None else self.redis.get(key))
            return found.decode(errors="replace") if isinstance(found, bytes) else None

        async def none() -> None:
            return None

        return await self._guarded(remote, none)

    def put_pin(self, session: str, unit: str, ttl_s: float) -> None:
        """Written without waiting; dropped while Redis is down (the pin is this process's)."""
        conn = self._conn
        if conn is None or self._down or not conn.ready:
            return
        ms = max(int(ttl_s * 1000), 1)
        conn.send(_ignore, "SET", self._pin_key(session), unit, "PX", ms)

    async def record(self, unit: str, signal: Signal) -> KeyStatus:
        known = self._known.get(unit, OK_STATUS)
        if signal.verdict is Verdict.CLIENT_ERROR:
            return known
        if signal.verdict is Verdict.OK and _clean(known):
            return known  # the common success: nothing to learn, no round trip
        if signal.verdict is not Verdict.OK:
            self.grants.drop(unit)

        async def remote() -> KeyStatus:
            raw = await self.redis.hgetall(self._status_key(unit))
            now = time.time()
            new = next_status(_decode(raw), signal, now, self.policy)
            await self._write_status(unit, new, now)
            self._known[unit] = new
            return new

        return await self._guarded(remote, lambda: self.local.record(unit, signal))

    async def _write_status(self, unit: str, status: KeyStatus, now: float) -> None:
        key = self._status_key(unit)
        if _clean(status):
            await self.redis.delete(key)
            return
        ttl = max(status.until - now, 0.0) + STATUS_GRACE_S
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=_encode(status))
            pipe.pexpire(key, int(ttl * 1000) + 1000)
            await pipe.execute()

    async def status(self, unit: str) -> KeyStatus:
        async def remote() -> KeyStatus:
            return _decode(await self.redis.hgetall(self._status_key(unit)))

        return await self._guarded(remote, lambda: self.local.status(unit))

    async def snapshot(self, candidates: Sequence[Candidate]) -> list[UnitView]:
        """Read-only, one pipelined round trip for all units; stale fields are left to the
        reservation script to drop."""

        async def remote() -> list[UnitView]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for c in candidates:
                    pipe.hgetall(self._usage_key(c.unit))
                    pipe.hgetall(self._status_key(c.unit))
                replies = await pipe.execute()
            now = time.time()
            return [
                unit_view(c, _decode(replies[2 * i + 1]), _counts(replies[2 * i], c, now), now)
                for i, c in enumerate(candidates)
            ]

        return await self._guarded(remote, lambda: self.local.snapshot(candidates))

    async def close(self) -> None:
        if self._refills:
            await asyncio.gather(*list(self._refills), return_exceptions=True)
        self.grants.drop_all()
        if self._conn is not None:
            if self._conn.ready:  # the replies to the settles sent are in before this returns
                with contextlib.suppress(RedisError, OSError):
                    await self._conn.call("PING")
            if self._resends:  # settles sent again after a NOSCRIPT (known now: replies are in)
                await asyncio.gather(*list(self._resends), return_exceptions=True)
            await self._conn.close()
        await self.redis.aclose()

    async def _guarded(
        self, remote: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        if self._down and time.monotonic() < self._retry_at:
            self.fallbacks += 1
            return await fallback()
        try:
            result = await remote()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await fallback()
        if self._down:
            self._down = False
            self._backoff.reset()
            log.info("key pool: Redis at %s answers again; quotas shared", self._where)
        return result

    def _failed(self, exc: Exception) -> None:
        """A call Redis did not serve: counted, the outage logged once, Redis tried again after
        a growing wait."""
        self.fallbacks += 1
        if not self._down:
            log.warning(
                "key pool: Redis at %s failed (%s); using this process's own quota state "
                "until it answers",
                self._where,
                type(exc).__name__,
            )
        self._down = True
        self._retry_at = time.monotonic() + self._backoff.next()


def _ignore(reply: object) -> None:
    """A pin's SET: its reply (OK, or an error while Redis has trouble) changes nothing."""


def _settle_args(reservation: Reservation, used_tokens: int | None) -> list[int | str]:
    """SETTLE_LUA's arguments: bucket, day, tokens to add, requests to add (-1: a request
    never sent), the parallel slot to free."""
    return [
        reservation.bucket,
        reservation.day,
        settle_delta(reservation, used_tokens),
        -1 if used_tokens is None else 0,
        reservation.id,
    ]


def _counts(raw: dict[bytes, bytes], c: Candidate, now: float) -> tuple[int, int, int, int, int]:
    """(minute requests, minute tokens, day requests, day tokens, in flight) from a usage hash,
    read the way the reservation script reads it."""
    oldest, day = oldest_live_bucket(now), str(day_window(now, c.timezone)[0])
    minute_requests = minute_tokens = day_requests = day_tokens = in_flight = 0
    for name, value in raw.items():
        kind, _, rest = name.decode(errors="replace").partition(":")
        try:
            number = float(value)
        except ValueError:
            continue
        if kind in ("m", "t") and rest.lstrip("-").isdigit() and int(rest) >= oldest:
            if kind == "m":
                minute_requests += int(number)
            else:
                minute_tokens += int(number)
        elif kind == "r" and rest == day:
            day_requests = int(number)
        elif kind == "u" and rest == day:
            day_tokens = int(number)
        elif kind == "p" and number > now:
            in_flight += 1
    return minute_requests, minute_tokens, day_requests, day_tokens, in_flight


def _clean(status: KeyStatus) -> bool:
    return status.state is KeyState.OK and not any(fault for _, fault in status.recent)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _encode(status: KeyStatus) -> dict[str, str]:
    recent = ",".join(f"{when!r}:{int(fault)}" for when, fault in status.recent)
    return {
        "state": status.state.value,
        "until": repr(status.until),
        "reason": status.reason,
        "recent": recent,
    }


def _decode(raw: dict[bytes, bytes]) -> KeyStatus:
    """A stored status; anything unreadable in it reads as ok (the store is ours, but a
    half-written or foreign value must not take a key out)."""
    try:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        state = KeyState(fields.get("state", "ok"))
        until = float(fields.get("until", "0"))
        recent = tuple(
            (float(when), fault == "1")
            for when, _, fault in (p.partition(":") for p in fields.get("recent", "").split(","))
            if when
        )
    except (ValueError, UnicodeDecodeError):
        return OK_STATUS
    if not math.isfinite(until) or not all(math.isfinite(when) for when, _ in recent):
        return OK_STATUS
    return KeyStatus(state, until, fields.get("reason", "")[:64], recent)
