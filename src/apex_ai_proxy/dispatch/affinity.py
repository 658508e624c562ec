"""Session affinity: the requests of one conversation go to the key that served it last.

Prompt caches are per key (per organisation), so a conversation that hops between keys pays
for its whole prompt on every hop. A model with `affinity_ttl_s` pins a conversation to the
key × model that last answered it, for that long after its last answer; a pinned key that is
out (429, quota, cooldown) is simply not first, so failover works as always and the
conversation is pinned to the key that answered instead.

The conversation is named by, in this order: the model's `affinity_header`, Claude Code's and
Codex's session headers, `prompt_cache_key`, `previous_response_id`, `metadata.user_id`.
Pins are kept in this process (bounded, oldest dropped first) and, with `state: {backend:
redis}`, in Redis too, so a conversation keeps its key on every replica and worker. There the
pin is the truth and this process's copy a cache for SHARED_FRESH_S (another replica may have
moved the conversation on a failover): a session without a fresh copy is looked up (a GET, only
for requests that name a session), and a new or moved pin is written without waiting (SET with
the TTL, refreshed once a quarter of it has passed).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

#: Session headers sent by coding agents (lower-case, as the server stores names).
SESSION_HEADERS = ("x-claude-code-session-id", "session_id", "x-session-id")
BODY_FIELDS = ("prompt_cache_key", "previous_response_id")
MAX_PINS = 100_000
MAX_SESSION_CHARS = 256
SHARED_FRESH_S = 1.0  # a shared pin's copy in this process is trusted this long


class SharedPins(Protocol):
    """Where pins are shared between processes (the Redis ledger)."""

    async def get_pin(self, session: str) -> str | None: ...

    def put_pin(self, session: str, unit: str, ttl_s: float) -> None: ...


class Affinity:
    def __init__(
        self, ttl_s: float, header: str | None = None, shared: SharedPins | None = None
    ) -> None:
        self.ttl_s = ttl_s
        self.headers = ((header.lower(),) if header else ()) + SESSION_HEADERS
        self.shared = shared
        self._keep_s = ttl_s if shared is None else min(ttl_s, SHARED_FRESH_S)
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()  # session → unit, until
        self._shared_at: dict[str, float] = {}  # session → when its pin was last written shared

    def session_of(self, headers: Mapping[str, str], body: dict) -> str | None:
        for name in self.headers:
            value = dict.get(headers, name)  # type: ignore[arg-type]
            if value:
                return _bounded(f"h:{value}")
        for name in BODY_FIELDS:
            value = body.get(name)
            if isinstance(value, str) and value:
                return _bounded(f"b:{value}")
        metadata = body.get("metadata")
        user = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user, str) and user:
            return _bounded(f"u:{user}")
        return None

    def pinned(self, session: str) -> str | None:
        found = self._pins.get(session)
        if found is None:
            return None
        unit, until = found
        if until <= time.monotonic():
            del self._pins[session]
            self._shared_at.pop(session, None)
            return None
        return unit

    async def lookup(self, session: str) -> str | None:
        """This process's pin, else the shared one (then kept here too)."""
        unit = self.pinned(session)
        if unit is not None or self.shared is None:
            return unit
        unit = await self.shared.get_pin(session)
        if unit is not None:
            self._keep(session, unit, time.monotonic())
            self._shared_at[session] = time.monotonic()
        return unit

    def pin(self, session: str, unit: str) -> None:
        now = time.monotonic()
        previous = self._pins.get(session)
        self._keep(session, unit, now)
        if self.shared is None:
            return
        # Written shared when it changes, and refreshed once a quarter of its TTL has passed:
        # not on every answer of a busy conversation.
        written = self._shared_at.get(session)
        if (
            previous is None
            or previous[0] != unit
            or written is None
            or (now - written > self.ttl_s / 4)
        ):
            self.shared.put_pin(session, unit, self.ttl_s)
            self._shared_at[session] = now

    def _keep(self, session: str, unit: str, now: float) -> None:
        pins = self._pins
        pins[session] = (unit, now + self._keep_s)
        pins.move_to_end(session)
        while len(pins) > MAX_PINS:
            dropped, _ = pins.popitem(last=False)
            self._shared_at.pop(dropped, None)

    def take_over(self, previous: Affinity) -> None:
        """A reload: the conversations pinned so far stay pinned."""
        self._pins, self._shared_at = previous._pins, previous._shared_at


def _bounded(session: str) -> str:
    # Clients choose these strings: a long one is kept by its start (enough to tell apart).
    return session[:MAX_SESSION_CHARS]
