"""Session affinity: the requests of one conversation go to the key that served it last.

Prompt caches are per key (per organisation), so a conversation that hops between keys pays
for its whole prompt on every hop. A model with `affinity_ttl_s` pins a conversation to the
key × model that last answered it, for that long after its last answer; a pinned key that is
out (429, quota, cooldown) is simply not first, so failover works as always and the
conversation is pinned to the key that answered instead.

The conversation is named by, in this order: the model's `affinity_header`, Claude Code's and
Codex's session headers, `prompt_cache_key`, `previous_response_id`, `metadata.user_id`.
Pins are this process's (bounded, oldest dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

#: Session headers sent by coding agents (lower-case, as the server stores names).
SESSION_HEADERS = ("x-claude-code-session-id", "session_id", "x-session-id")
BODY_FIELDS = ("prompt_cache_key", "previous_response_id")
MAX_PINS = 100_000
MAX_SESSION_CHARS = 256


class Affinity:
    def __init__(self, ttl_s: float, header: str | None = None) -> None:
        self.ttl_s = ttl_s
        self.headers = ((header.lower(),) if header else ()) + SESSION_HEADERS
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()  # session → unit, until

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
            return None
        return unit

    def pin(self, session: str, unit: str) -> None:
        pins = self._pins
        pins[session] = (unit, time.monotonic() + self.ttl_s)
        pins.move_to_end(session)
        while len(pins) > MAX_PINS:
            pins.popitem(last=False)


def _bounded(session: str) -> str:
    # Clients choose these strings: a long one is kept by its start (enough to tell apart).
    return session[:MAX_SESSION_CHARS]
