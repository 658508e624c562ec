"""Redaction of records before any sink sees them.

Two rules, applied by `Redactor.redact_record()`:

1. Credential headers (`Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`,
   `cf-aig-authorization`, `X-APEX-AI-PROXY-TOKEN`, `Cookie`, `Set-Cookie`; any case) have their
   value replaced by "[REDACTED]".
2. Every configured secret string (provider API keys, gateway tokens) is replaced by
   "[REDACTED]" wherever it appears: other header values, request and response bodies, the error
   message and the attempts' reasons.

Bodies are then capped at `body_limit` bytes; a capped body ends with a "[truncated: N bytes]"
marker giving the original size. The secrets are matched by one compiled regex (escaped
alternation, longest first), rebuilt only when the set of secrets changes. Secrets shorter than
`MIN_SECRET_LENGTH` are ignored: replacing "abc" everywhere would destroy the record and
protect nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .record import RawRecord, RequestRecord, _headers_to_dict

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6
SENSITIVE_HEADERS = frozenset(
    name.lower()
    for name in (
        "Authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cf-aig-authorization",
        "X-APEX-AI-PROXY-TOKEN",
        "Cookie",
        "Set-Cookie",
    )
)


class Redactor:
    __slots__ = ("body_limit", "_secrets", "_pattern", "_longest")

    def __init__(self, secrets: Iterable[str] = (), *, body_limit: int = 64 * 1024) -> None:
        self.body_limit = body_limit
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Replace the set of secret strings. Cheap when the set did not change."""
        wanted = frozenset(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)
        if wanted == self._secrets:
            return
        self._secrets = wanted
        if not wanted:
            self._pattern, self._longest = None, 0
            return
        ordered = sorted(wanted, key=len, reverse=True)  # a secret that prefixes another loses
        self._pattern = re.compile("|".join(map(re.escape, ordered)))
        self._longest = len(ordered[0].encode())

    def scrub(self, text: str | None) -> str | None:
        """Replace every configured secret inside `text`."""
        if text is None or self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def redact_headers(self, headers: Any) -> dict[str, str] | None:
        plain = _headers_to_dict(headers)
        if plain is None:
            return None
        return {
            name: REDACTED if name.lower() in SENSITIVE_HEADERS else self.scrub(value)
            for name, value in plain.items()
        }

    def redact_body(self, body: bytes | str | None) -> str | None:
        """Scrub secrets, then cap at `body_limit` bytes (marking the cut)."""
        if body is None:
            return None
        data = body.encode() if isinstance(body, str) else bytes(body)
        limit = self.body_limit
        if len(data) <= limit:
            return self.scrub(data.decode("utf-8", errors="replace"))
        head_chars = len(data[:limit].decode("utf-8", errors="replace"))
        kept = self._scrub_prefix(data[: limit + self._longest], head_chars)
        return f"{kept}[truncated: {len(data)} bytes]"

    def _scrub_prefix(self, data: bytes, cut: int) -> str:
        """The first `cut` characters of `data`, with every secret that starts before the cut
        replaced whole (`data` runs one secret length past the cut so such a secret is seen
        in full; a secret starting after the cut is simply not kept)."""
        text = data.decode("utf-8", errors="replace")
        if self._pattern is None:
            return text[:cut]
        parts: list[str] = []
        position = 0
        for match in self._pattern.finditer(text):
            if match.start() >= cut:
                break
            parts.append(text[position : match.start()])
            parts.append(REDACTED)
            position = match.end()
        if position < cut:
            parts.append(text[position:cut])
        return "".join(parts)

    def redact_raw(self, raw: RawRecord) -> RawRecord:
        return RawRecord(
            request_headers=self.redact_headers(raw.request_headers),
            request_body=self.redact_body(raw.request_body),
            response_headers=self.redact_headers(raw.response_headers),
            response_body=self.redact_body(raw.response_body),
        )

    def redact_record(self, record: RequestRecord) -> RequestRecord:
        """Redact `record` in place (it belongs to the telemetry pipeline now) and return it."""
        if self._pattern is not None:
            record.error_message = self.scrub(record.error_message)
            for attempt in record.attempts:
                attempt.reason = self.scrub(attempt.reason)
        if record.raw is not None:
            record.raw = self.redact_raw(record.raw)
        return record
