"""Every replica's in-memory copy of the keys and of their budget period's spend.

A key check is a dict lookup by the key's hash: no store round trip per request. A background
loop reads the whole table again every `cache_ttl_s` seconds, so a revocation, a change or a new
key made anywhere (CLI, another replica's admin API) reaches every replica within one TTL plus
one store read; the replica whose admin API made the change refreshes at once. A store that is
down leaves the last copy in place (logged once per outage).

Spend is charged here first (`charge`: the replica that served the request sees it at once)
and written behind, in batches, by `flush`. `_spend` holds what the last read found in the
store; `_pending` what was charged here and not yet written. Flush and refresh take one lock,
so a charge is counted once: in `_pending` until it is written, then in `_spend` (added by
flush, and found again by the next refresh).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from apex_ai_proxy.virtualkeys.model import DAY_S, VirtualKey
from apex_ai_proxy.virtualkeys.store import KeyStore, StoreError

log = logging.getLogger("apex_ai_proxy.virtualkeys")

_LONGEST_PERIOD_DAYS = 30


class KeyCache:
    def __init__(
        self, store: KeyStore, ttl_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self._by_hash: dict[str, VirtualKey] = {}
        self._spend: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._queue: list[tuple[str, int, float, int]] = []
        self._lock = asyncio.Lock()
        self._loop_task: asyncio.Task | None = None
        self._flush_task: asyncio.Task | None = None
        self._failing = False
        #: What the guard made of each key string it found here (guard.VirtualName), so a
        #: key's next requests skip the hash and the per-key work. Emptied by every refresh:
        #: nothing outlives the entry it was made from (a revocation, a change); it holds only
        #: keys found in the table, so it is as bounded as the table.
        self.seen: dict[str, Any] = {}

    # --- reads (per request, no I/O) ------------------------------------------------------------

    def lookup(self, key_hash: str) -> VirtualKey | None:
        return self._by_hash.get(key_hash)

    def spend(self, entry: VirtualKey) -> float:
        """The key's spend in its current budget period, as this replica knows it."""
        return self._spend.get(entry.id, 0.0) + self._pending.get(entry.id, 0.0)

    def keys(self) -> list[VirtualKey]:
        return list(self._by_hash.values())

    # --- refresh --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        now = self.clock()
        async with self._lock:
            keys = await self.store.all()
            rows = await self.store.spend_rows(int(now // DAY_S) - _LONGEST_PERIOD_DAYS)
        by_id = {k.id: k for k in keys}
        spend = {k.id: k.spend_total for k in keys if k.budget_period == "never"}
        starts = {k.id: k.period_start_day(now) for k in keys if k.budget_period != "never"}
        for key_id, day, usd, _ in rows:
            start = starts.get(key_id)
            if start is not None and day >= start:
                spend[key_id] = spend.get(key_id, 0.0) + usd
        self._by_hash = {k.key_hash: k for k in by_id.values()}
        self.seen = {}
        self._spend = spend

    async def start(self) -> None:
        """Read the store once (a store that is down is logged: virtual keys get 401 until it
        answers, gateway tokens keep working), then keep refreshing in the background."""
        await self._refresh_logged()
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s)
            await self.flush()
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except StoreError:
            if not self._failing:
                log.error("virtual keys: the store cannot be read; serving the last copy")
            self._failing = True
        else:
            if self._failing:
                log.warning("virtual keys: the store answers again")
            self._failing = False

    # --- spend ----------------------------------------------------------------------------------

    def charge(self, key_id: str, usd: float, now: float) -> None:
        """Count a finished request's cost here at once; written to the store soon after."""
        self._pending[key_id] = self._pending.get(key_id, 0.0) + usd
        self._queue.append((key_id, int(now // DAY_S), usd, 1))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        async with self._lock:
            if not self._queue:
                return
            batch, self._queue = self._queue, []
            merged: dict[tuple[str, int], list] = {}
            for key_id, day, usd, n in batch:
                slot = merged.setdefault((key_id, day), [0.0, 0])
                slot[0] += usd
                slot[1] += n
            try:
                await self.store.charge([(k, d, u, n) for (k, d), (u, n) in merged.items()])
            except StoreError:
                self._queue = batch + self._queue  # kept for the next flush
                return
            for (key_id, _), (usd, _) in merged.items():
                self._pending[key_id] = self._pending.get(key_id, 0.0) - usd
                self._spend[key_id] = self._spend.get(key_id, 0.0) + usd

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            self._loop_task = None
        if self._flush_task is not None:
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self.flush()
