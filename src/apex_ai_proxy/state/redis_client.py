"""The one way this gateway builds a Redis client, and the backoff of its reconnect loops.

Retry policy: a command that fails with a *connection* error is sent once more, at once, on a
fresh connection (redis-py's own `Retry(NoBackoff(), 1)`, which drops the broken connection
before the second try). That is what makes the first command after a Redis restart succeed:
the pooled connection is dead (the server closed it), the retry connects anew. Without a
`retry=` argument, `Redis.from_url` builds connections that never retry, and that first command
failed with a 503.

Why this and not the alternatives: `health_check_interval` only PINGs connections idle longer
than the interval (a restart inside it is still missed) and costs a round trip; an explicit
wrapper around each call would redo what redis-py already does, for plain commands, pipelines
and pub/sub alike. Timeouts are not retried: a Redis that hangs would double the wait of every
request. Every command the gateway sends is safe to repeat (SET, GET, DEL, HSET, HDEL, PEXPIRE;
a PUBLISH seen twice applies the same state twice).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0

#: Waits between reconnect attempts while Redis does not answer: 0.25 s, 0.5 s, 1 s, … 5 s.
FIRST_RETRY_SECONDS = 0.25
LONGEST_RETRY_SECONDS = 5.0


def redis_client(
    url: str, *, command_timeout: float = COMMAND_TIMEOUT_SECONDS, **options: Any
) -> Redis:
    """A client for `url` (no I/O yet: connections open on the first command)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=min(CONNECT_TIMEOUT_SECONDS, command_timeout),
        socket_timeout=command_timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        **options,
    )


class Backoff:
    """Doubling waits, from FIRST_RETRY_SECONDS up to LONGEST_RETRY_SECONDS."""

    def __init__(
        self, first: float = FIRST_RETRY_SECONDS, longest: float = LONGEST_RETRY_SECONDS
    ) -> None:
        self._first = first
        self._longest = longest
        self._next = first

    def next(self) -> float:
        wait = self._next
        self._next = min(wait * 2, self._longest)
        return wait

    def reset(self) -> None:
        self._next = self._first
