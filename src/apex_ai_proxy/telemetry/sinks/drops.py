"""How a sink reports the records it loses: in the log once per burst, never once per batch.

A full disk fails every write until someone frees space: a line per batch would flood the log
(and fill the disk further), while no line at all leaves operators guessing. So, per sink:

    first drop            WARNING with the real error ("database or disk is full")
    more drops            only counted (apex_records_dropped_total{stage=<sink>} counts every
                          record at once, by the Sink)
    every SUMMARY_S       WARNING "N more records dropped since <time> (last error: ...)" while
                          the drops go on
    next good write       WARNING summary of the drops since the last line, and the burst ends
    shutdown              the same summary, if drops are still untold
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("apex_ai_proxy.telemetry")

SUMMARY_S = 60.0


class DropLog:
    __slots__ = ("name", "interval", "clock", "_since", "_told", "_untold", "_reason")

    def __init__(
        self,
        name: str,
        interval: float = SUMMARY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.interval = interval
        self.clock = clock
        self._since: str | None = None  # wall-clock time of the burst's first drop
        self._told = 0.0  # clock() of the last line
        self._untold = 0  # records dropped since the last line
        self._reason = ""

    @property
    def in_burst(self) -> bool:
        return self._since is not None

    def dropped(self, count: int, reason: str) -> None:
        now = self.clock()
        if self._since is None:
            self._since = time.strftime("%H:%M:%S")
            self._told = now
            log.warning(
                "records sink %s: dropped %d record(s): %s; until a write succeeds further drops "
                "are counted in apex_records_dropped_total{stage=%r} and summed up here",
                self.name,
                count,
                reason,
                self.name,
            )
            return
        self._untold += count
        self._reason = reason
        if now - self._told >= self.interval:
            self._summary("still failing")
            self._told = now

    def recovered(self) -> None:
        """A write succeeded: tell what was dropped since the last line, end the burst."""
        if self._since is not None:
            self._summary("writing again")
            self._since = None

    def close(self) -> None:
        if self._since is not None and self._untold:
            self._summary("shutting down")
        self._since = None

    def _summary(self, state: str) -> None:
        if self._untold:
            log.warning(
                "records sink %s: %d more record(s) dropped since %s (last error: %s); %s",
                self.name,
                self._untold,
                self._since,
                self._reason,
                state,
            )
        else:
            log.info("records sink %s: %s", self.name, state)
        self._untold = 0
