r"""Redaction of records before any sink sees them, and of upstream text bound for a client.

Two rules, applied by `Redactor.redact_record()`:

1. Credential headers (`Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`,
   `cf-aig-authorization`, `X-APEX-AI-PROXY-TOKEN`, `Cookie`, `Set-Cookie`; any case) have their
   value replaced by "[REDACTED]".
2. Every configured secret string (provider API keys, gateway tokens) is replaced by
   "[REDACTED]" wherever it appears: other header values, request and response bodies, the error
   message and the attempts' reasons.

A secret is found in every spelling an encoder may give it: each character literal, or JSON's
`\uXXXX` (either case of hex), `/` also as `\/`, or URL percent-encoding `%XX`, each also
escaped again any number of times (`\\u002d`, `\\\/`, `%252D`: a body nested as a string).
Upstreams quote a rejected key back in any of these (PHP writes `\/`, some encoders escape
`-`), so matching the literal bytes alone leaked it. Text without `\u`, `\/` or `%` (nearly all of it) takes the
literal search: one compiled regex (escaped alternation, longest first), rebuilt only when the set
of secrets changes. Text with escapes is decoded once into a copy, searched literally there, and
each hit is mapped back to the span of the original it came from (an alternation of per-character
escape groups costs ~250 ms per 64 KB in Python's regex engine; this costs a pass over the
escapes). Secrets shorter than `MIN_SECRET_LENGTH` are ignored: replacing "abc" everywhere would
destroy the record and protect nothing.

Bodies are then capped at `body_limit` bytes; a capped body ends with a "[truncated: N bytes]"
marker giving the original size. The other fields a client chooses (the path it asked for, the
model, the provider origin of a passthrough request, the dropped field names, error messages that
quote its input) are cut to a few hundred characters with a "[truncated: N chars]" marker, so a
request with a megabyte path costs the records what any other request does.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from .record import RawRecord, RequestRecord, _headers_to_dict

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6
FIELD_LIMIT = 256  # characters kept of a client-chosen short field (path, model, origin)
MESSAGE_LIMIT = 2048  # characters kept of an error message or an attempt's reason
DROPPED_FIELDS_LIMIT = 32  # names kept in `dropped_fields` (clients choose extra field names)
HEADER_VALUE_LIMIT = 1024  # characters kept of a raw-captured header value (User-Agent, ...)
HEADERS_LIMIT = 100  # raw-captured headers per message
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
# The escapes that may spell a secret's character: JSON `\uXXXX` and `\/`, URL `%XX`. Each
# counts however often it was escaped again: a router that wraps the provider's body as a JSON
# string writes `\\u002d` and `\\\/`, a URL quoted inside a URL `%252D`. Any run of
# backslashes (and any `%25` chain) is one escape of the character after it.
_ESCAPE = re.compile(r"\\+u([0-9a-fA-F]{4})|\\+(/)|%(?:25)*([0-9a-fA-F]{2})")
Span = tuple[int, int]


class Redactor:
    __slots__ = ("body_limit", "_secrets", "_pattern", "_longest")

    def __init__(self, secrets: Iterable[str] = (), *, body_limit: int = 64 * 1024) -> None:
        self.body_limit = body_limit
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self.set_secrets(secrets)

    @property
    def active(self) -> bool:
        """True when there is any secret to look for."""
        return self._pattern is not None

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
        # The longest spelling: every character as a 6-byte `\uXXXX` escape.
        self._longest = 6 * len(ordered[0].encode())

    def scrub(self, text: str | None) -> str | None:
        """Replace every configured secret inside `text`, in whatever escaping it is written."""
        if text is None or self._pattern is None:
            return text
        spans = self._spans(text)
        return _splice(text, spans, len(text)) if spans else text

    def scrub_bytes(self, data: bytes) -> bytes:
        """`scrub` for raw bytes (UTF-8, anything else kept byte for byte); `data` itself when
        no secret is in it."""
        if self._pattern is None:
            return data
        text = data.decode("utf-8", "surrogateescape")
        spans = self._spans(text)
        if not spans:
            return data
        return _splice(text, spans, len(text)).encode("utf-8", "surrogateescape")

    def _spans(self, text: str) -> list[Span]:
        """Where the secrets are in `text`: (start, end) pairs, in order, not overlapping."""
        pattern = self._pattern
        assert pattern is not None
        if "\\u" not in text and "\\/" not in text and "%" not in text:
            first = pattern.search(text)  # nearly always None: skip building the iterator
            if first is None:
                return []
            return [m.span() for m in pattern.finditer(text, first.start())]
        decoded, where, escapes = _decode_escapes(text)
        spans = []
        for match in pattern.finditer(decoded):
            start, end = match.span()
            spans.append((_original(start, where, escapes), _original_end(end, where, escapes)))
        return spans

    def redact_headers(self, headers: Any) -> dict[str, str] | None:
        plain = _headers_to_dict(headers)
        if plain is None:
            return None
        return {
            truncate(name, FIELD_LIMIT): REDACTED
            if name.lower() in SENSITIVE_HEADERS
            else truncate(self.scrub(value) or "", HEADER_VALUE_LIMIT)
            for name, value in itertools.islice(plain.items(), HEADERS_LIMIT)
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
        spans = [span for span in self._spans(text) if span[0] < cut]
        return _splice(text, spans, cut)

    def redact_raw(self, raw: RawRecord) -> RawRecord:
        return RawRecord(
            request_headers=self.redact_headers(raw.request_headers),
            request_body=self.redact_body(raw.request_body),
            response_headers=self.redact_headers(raw.response_headers),
            response_body=self.redact_body(raw.response_body),
        )

    def redact_record(self, record: RequestRecord) -> RequestRecord:
        """Redact `record` in place (it belongs to the telemetry pipeline now) and return it."""
        bound_fields(record, truncate if self._pattern is None else self.scrub_cut)
        if record.raw is not None:
            record.raw = self.redact_raw(record.raw)
        return record

    def scrub_cut(self, text: str, limit: int) -> str:
        """`truncate(scrub(text), limit)`, with the secrets found before the cut: cut first, a
        secret straddling the cut would lose its tail and its head would stay. Only a window
        one secret spelling past the cut is searched, so a megabyte field costs no more than a
        short one."""
        if len(text) <= limit:
            return self.scrub(text) or ""
        head = text[: limit + 2 * self._longest]
        spans = [span for span in self._spans(head) if span[0] < limit]
        return f"{_splice(head, spans, limit)}[truncated: {len(text)} chars]"


def bound_fields(record: RequestRecord, cut: Callable[[str, int], str] | None = None) -> None:
    """Cut the fields a client chooses (or an upstream echoes) to a fixed size, in place, with
    `cut` (default `truncate`; the redactor's also scrubs them)."""
    cut = cut or truncate
    record.endpoint = cut(record.endpoint, FIELD_LIMIT)
    record.requested_model = cut(record.requested_model, FIELD_LIMIT)
    record.mapped_model = cut(record.mapped_model, FIELD_LIMIT)
    record.upstream_model = cut(record.upstream_model, FIELD_LIMIT)
    record.provider = truncate(record.provider, FIELD_LIMIT)
    if record.error_message is not None:
        record.error_message = cut(record.error_message, MESSAGE_LIMIT)
    for attempt in record.attempts:
        if attempt.reason is not None:
            attempt.reason = cut(attempt.reason, MESSAGE_LIMIT)
    dropped = record.dropped_fields
    if len(dropped) > DROPPED_FIELDS_LIMIT or any(len(name) > FIELD_LIMIT for name in dropped):
        kept = [truncate(name, FIELD_LIMIT) for name in dropped[:DROPPED_FIELDS_LIMIT]]
        if len(dropped) > DROPPED_FIELDS_LIMIT:
            kept.append(f"[+{len(dropped) - DROPPED_FIELDS_LIMIT} more]")
        record.dropped_fields = kept


def truncate(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and a marker giving the original length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}[truncated: {len(text)} chars]"


def _decode_escapes(text: str) -> tuple[str, list[int], list[Span]]:
    """`text` with every escape replaced by its character; the decoded positions of those
    characters (ascending) and the span each escape had in `text`."""
    parts: list[str] = []
    where: list[int] = []
    spans: list[Span] = []
    last = 0
    size = 0  # length of the decoded text so far
    for match in _ESCAPE.finditer(text):
        start, end = match.span()
        hex4, slash, hex2 = match.groups()
        parts.append(text[last:start])
        parts.append(chr(int(hex4, 16)) if hex4 else slash or chr(int(hex2, 16)))
        size += start - last
        where.append(size)
        spans.append((start, end))
        size += 1
        last = end
    parts.append(text[last:])
    return "".join(parts), where, spans


def _original(position: int, where: list[int], spans: list[Span]) -> int:
    """The position in the original text of the decoded character at `position`."""
    index = bisect_right(where, position) - 1  # the last escape at or before `position`
    if index < 0:
        return position
    if where[index] == position:
        return spans[index][0]
    return spans[index][1] + position - where[index] - 1


def _original_end(end: int, where: list[int], spans: list[Span]) -> int:
    """The original position just after the decoded character `end - 1`."""
    last = end - 1
    index = bisect_right(where, last) - 1
    if index < 0:
        return end
    return spans[index][1] + last - where[index]


def _splice(text: str, spans: list[Span], cut: int) -> str:
    """The first `cut` characters of `text` with every span replaced by REDACTED whole."""
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.append(text[position:start])
        parts.append(REDACTED)
        position = end
    if position < cut:
        parts.append(text[position:cut])
    return "".join(parts)
