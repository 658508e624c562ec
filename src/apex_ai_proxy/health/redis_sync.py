"""Cooldowns shared between replicas through Redis, never on the request path.

    on_failure / on_success ─► pending: the latest state of each changed unit (a dict)
                                   │
            publisher task ◄───────┘  HSET {prefix}units <unit> <state> (HDEL when cleared),
                                      PEXPIRE {prefix}units, PUBLISH {prefix}events <state>

    subscriber task: SUBSCRIBE {prefix}events, then HGETALL {prefix}units (so a replica that
                     starts catches up on cooldowns still running) ─► the unit's table slot

A state is JSON: {"o": origin, "k": unit name, "u": cooldown end, "f": failures, "r": 429?,
"d": degraded by repeated faults?}. Units are keys and provider endpoints (health/faults.py):
a replica that degrades a key or an endpoint tells the others; the fault windows that decide
it are counted by each gateway (its workers share theirs), so a success path never publishes.
The end is wall-clock time (time.time(); 0: cleared) because monotonic clocks differ between
machines, so replicas need clocks in step (NTP) to well within a cooldown. `origin` names the
table the change was made in: a process skips its own changes and those of its sibling workers,
which share its table. Replicas must share the config, since unit names ("provider#0") are built
from it. Remote changes are applied as they arrive: last writer wins, as between workers.

Redis down or slow: the request path only stores the unit's latest state in a dict (bounded by
the number of units) and sets an event. The tasks log once, retry with backoff (also when Redis
is down at start-up), and publish what is pending when Redis answers again; meanwhile cooldowns
keep working within this gateway, and `reachable` (False) tells /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from apex_ai_proxy.health.config import HealthConfig
from apex_ai_proxy.health.state import HealthState, UnitHealth
from apex_ai_proxy.state.config import redacted_redis_url
from apex_ai_proxy.state.redis_client import Backoff, redis_client

log = logging.getLogger("apex_ai_proxy")

POLL_SECONDS = 5.0  # the subscriber's longest wait for a message before looking again


class RedisHealthSync:
    def __init__(self, health: HealthState, config: HealthConfig) -> None:
        self.health = health
        self.table = health.table
        self._url = config.redis_url
        self._where = redacted_redis_url(config.redis_url)
        self._units_key = config.key_prefix + "units"
        self._channel = config.key_prefix + "events"
        # The hash outlives the longest cooldown, then goes away on its own.
        self._keep_ms = round(health.longest_cooldown_s * 1000) + 60_000
        self._pending: dict[str, tuple[float, int, bool, bool]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Redis | None = None
        self._down = False

    def start(self) -> None:
        """Start the background tasks; returns at once, whether Redis answers or not."""
        self._client = redis_client(self._url, health_check_interval=30)
        self.health.on_change = self._changed
        self._tasks = [
            asyncio.create_task(self._publish_forever(), name="health-publish"),
            asyncio.create_task(self._subscribe_forever(), name="health-subscribe"),
        ]

    async def load(self) -> None:
        """Apply what Redis holds now, once, without the background tasks (a command that
        shows the state of a running gateway: `apex-ai-proxy pool`)."""
        client = redis_client(self._url)
        try:
            for state in (await client.hgetall(self._units_key)).values():
                self._apply(state)
        finally:
            await client.aclose()

    def follow(self, health: HealthState) -> None:
        """Share `health` from now on (a config reload built it on the same table). The old
        state keeps its hook: requests still in flight on it publish what they see."""
        self.health = health
        health.on_change = self._changed

    @property
    def reachable(self) -> bool:
        """False from the first failed Redis call until one succeeds again."""
        return not self._down

    async def close(self) -> None:
        self.health.on_change = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- the request path: remember, wake the publisher ----------------------------------------

    def _changed(self, key_name: str, unit: UnitHealth) -> None:
        until = unit.cooldown_until
        end = until - time.monotonic() + time.time() if until else 0.0
        self._pending[key_name] = (end, unit.failures, unit.rate_limited, unit.degraded)
        self._wake.set()

    # --- publishing ----------------------------------------------------------------------------

    async def _publish_forever(self) -> None:
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            try:
                await self._publish(batch)
            except (RedisError, OSError) as exc:
                for name, state in batch.items():  # newer changes made meanwhile win
                    self._pending.setdefault(name, state)
                self._trouble(exc)
                await asyncio.sleep(backoff.next())
                self._wake.set()
            else:
                backoff.reset()
                self._recovered()

    async def _publish(self, batch: dict[str, tuple[float, int, bool, bool]]) -> None:
        assert self._client is not None
        origin = self.table.origin
        pipe = self._client.pipeline(transaction=False)
        for name, (end, failures, rate_limited, degraded) in batch.items():
            state = orjson.dumps(
                {"o": origin, "k": name, "u": end, "f": failures, "r": rate_limited, "d": degraded}
            )
            if end:
                pipe.hset(self._units_key, name, state)
            else:
                pipe.hdel(self._units_key, name)
            pipe.publish(self._channel, state)
        pipe.pexpire(self._units_key, self._keep_ms)
        await pipe.execute()

    # --- subscribing ---------------------------------------------------------------------------

    async def _subscribe_forever(self) -> None:
        assert self._client is not None
        backoff = Backoff()
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribed first, so nothing published while the hash is read is missed.
                await pubsub.subscribe(self._channel)
                for state in (await self._client.hgetall(self._units_key)).values():
                    self._apply(state)
                self._recovered()
                backoff.reset()
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=POLL_SECONDS
                    )
                    if message is not None and message["type"] == "message":
                        self._apply(message["data"])
            except (RedisError, OSError) as exc:
                self._trouble(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(backoff.next())

    def _apply(self, raw: bytes) -> None:
        try:
            state = orjson.loads(raw)
            origin, name = state["o"], state["k"]
            end = float(state["u"])
            failures = min(max(int(state["f"]), 0), 0xFFFFFFFF)
            rate_limited = bool(state["r"])
            degraded = bool(state.get("d", False))  # absent from an older replica's states
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not a state this module wrote: ignore it
        if origin == self.table.origin or name not in self.health or not math.isfinite(end):
            return  # NaN would cool the key down for good, inf likewise
        # A replica whose clock runs ahead (or anything that can PUBLISH here) may say "days":
        # no cooldown from elsewhere outlasts the longest this gateway would set itself.
        end = min(end, time.time() + self.health.longest_cooldown_s) if end else 0.0
        unit = self.health.unit(name)
        unit.failures = failures
        unit.rate_limited = rate_limited
        unit.degraded = degraded
        unit.cooldown_until = end - time.time() + time.monotonic() if end else 0.0

    # --- one log line per outage ---------------------------------------------------------------

    def _trouble(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "health: Redis at %s is not answering (%s); cooldowns stay within this "
                "gateway until it does",
                self._where,
                exc,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("health: Redis at %s answers again; sharing cooldowns", self._where)
