"""What one client connection may cost: sizes, queue depth and how long it may stay silent.

Timeouts are per-connection state, not one timer per read: each connection keeps a deadline
(a float), moved forward by the parser callbacks with the server's coarse clock, and one
server-wide ticker closes the connections whose deadline has passed. A read costs one attribute
store; the ticker costs one pass over the open connections a few times a second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_body: int = 32 * 1024 * 1024  # bytes of request body (413 past it)
    max_target: int = 8 * 1024  # bytes of request target (414 past it)
    max_header_count: int = 100  # header lines (431 past it)
    max_header_bytes: int = 64 * 1024  # bytes of header names and values (431 past it)
    max_pipelined: int = 16  # requests parsed ahead of their answer; reading pauses when full
    header_timeout: float = 10.0  # s from the first byte of a request to its last header
    body_timeout: float = 30.0  # s of silence while a request body is being read
    keep_alive_timeout: float = 60.0  # s an idle connection is kept between requests
    write_timeout: float = 60.0  # s a client may read nothing of an answer being written

    @property
    def tick(self) -> float:
        """How often the ticker looks at deadlines: a quarter of the shortest timeout, 50 ms to 1 s
        (timeouts fire up to one tick late)."""
        shortest = min(
            self.header_timeout, self.body_timeout, self.keep_alive_timeout, self.write_timeout
        )
        return max(0.05, min(1.0, shortest / 4))
