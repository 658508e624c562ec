"""Failure classification and cooldown: what an upstream's failure means, and what the client
gets when no upstream could answer.

Every failure below tries the next candidate:

- 401/403: the key's credential is wrong: out for long;
- 429: the key is rate limited: out for Retry-After, else briefly (exponential);
- a fault (5xx, 529, 408, timeout, connection error, a body or stream that broke, an answer that
  is not its API's): the provider endpoint's trouble, not the key's quota. Counted against the
  endpoint and the key (health/faults.py); only repeated faults degrade either;
- another configured failover status (409, …): the key cools down briefly.

Any other 4xx is the client's own mistake: answered as the upstream did, no retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dispatch.answers import OBJECT_START, with_gateway_headers
from apex_ai_proxy.dispatch.operation import Operation
from apex_ai_proxy.errors import (
    AllRateLimited,
    GatewayError,
    UpstreamError,
    UpstreamInvalid,
    UpstreamUnavailable,
    upstream_error_message,
)
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.http import Response
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.relay import RAW_CAPTURE_BYTES
from apex_ai_proxy.routing import Route
from apex_ai_proxy.telemetry.record import Attempt
from apex_ai_proxy.telemetry.redact import REDACTED
from apex_ai_proxy.translate import Translation
from apex_ai_proxy.upstream import CONNECTION_ERRORS, UpstreamResponse


@dataclass(slots=True)
class Failure:
    provider: str
    status: int | None
    reason: str
    retry_after: float | None = None
    rate_limited: bool = False
    invalid: bool = False  # answered 2xx with something that is not its API's answer


@dataclass(slots=True)
class Call:
    """One attempt: a target with one of its keys, the body sent, the record it fills."""

    target: Target
    key: ApiKey
    body: bytes
    translation: Translation | None
    stream: bool
    record: Attempt
    failures: list[Failure]  # the request's, shared by its attempts
    started: float = 0.0
    upstream: UpstreamResponse | None = None  # the answer, once one came (the key pool reads it)
    error_body: bytes | None = None  # an error answer's body, scrubbed (quota details in it)
    pool_headers: dict[str, str] | None = None  # the key pool's x-ratelimit-* for the client


class Cooldown:
    """Classifies failed attempts, cools their key down, and says why nothing could answer."""

    def __init__(
        self,
        health: HealthState,
        failover_statuses: Collection[int],
        scrub: Callable[[str], str],
    ) -> None:
        self.health = health
        self.failover_statuses = frozenset(failover_statuses)
        self.scrub = scrub  # removes every configured secret from text bound for the client

    def fail(
        self,
        call: Call,
        *,
        status: int | None,
        reason: str,
        retry_after: float | None = None,
        rate_limited: bool = False,
        auth: bool = False,
        invalid: bool = False,
    ) -> None:
        attempt = call.record
        attempt.latency_ms = (time.monotonic() - call.started) * 1000.0
        attempt.reason = reason = self.scrub(reason)  # listed in the 503 the client may get
        if auth or rate_limited or not is_fault(status, invalid):
            self.health.on_failure(call.key.name, retry_after, rate_limited=rate_limited, auth=auth)
            attempt.key_state = (
                "invalid" if auth else "rate_limited" if rate_limited else "cooling_down"
            )
        else:
            attempt.key_state = self.health.on_fault(call.key.name, call.target.endpoint())
        call.failures.append(
            Failure(call.target.provider, status, reason, retry_after, rate_limited, invalid)
        )
        return None

    def failed_over(
        self, call: Call, status: int, message: str, headers: Mapping[str, str]
    ) -> bool:
        """True when `status` lets another upstream try (the key is cooled down and the failure
        listed); False when it is the client's own mistake, which no other upstream would fix."""
        if status in (401, 403):
            self.fail(
                call,
                status=status,
                reason=f"upstream rejected the key ({status}): {message}",
                auth=True,
            )
            return True
        if status in self.failover_statuses or status >= 500:
            retry_after = parse_retry_after(headers.get("retry-after"))
            self.fail(
                call,
                status=status,
                reason=f"{status}: {message}",
                retry_after=retry_after,
                rate_limited=status == 429,
            )
            return True
        return False

    async def read_error(self, call: Call, upstream: UpstreamResponse) -> tuple[bytes, str]:
        """An error answer's body without secrets, and the human part of it."""
        try:
            raw = await upstream.read(call.target.adapter.config.max_response_bytes)
        except CONNECTION_ERRORS:  # too large included: judged by its status alone
            raw = b""
        raw = call.error_body = self.without_secrets(raw, call.key)
        return raw, upstream_error_message(raw)

    def without_secrets(self, raw: bytes, key: ApiKey) -> bytes:
        """An upstream's error body with every configured secret removed: upstreams sometimes
        quote the key they were given ("Incorrect API key provided: …"), and the body may be
        relayed to the client as it is."""
        # The key in use is replaced even when short (the redactor skips very short secrets).
        secret = key.secret.encode("utf-8", "surrogateescape") if key.secret else b""
        if secret and secret in raw:
            raw = raw.replace(secret, REDACTED.encode())
        return self.scrub_bytes(raw)

    def scrub_bytes(self, data: bytes) -> bytes:
        """`data` with every configured secret removed (in any escaping); `data` if none."""
        text = data.decode("utf-8", "surrogateescape")
        clean = self.scrub(text)
        return data if clean is text else clean.encode("utf-8", "surrogateescape")

    async def upstream_error(
        self, ctx: RequestContext, op: Operation, call: Call, upstream: UpstreamResponse
    ) -> Response | None:
        """None after failing over; else the client's own mistake, relayed or raised."""
        status = upstream.status
        raw, message = await self.read_error(call, upstream)
        if self.failed_over(call, status, message, upstream.headers):
            return None
        # The client's own mistake: answer as the upstream did, without retrying elsewhere.
        target, attempt, started = call.target, call.record, call.started
        attempt.latency_ms = (time.monotonic() - started) * 1000.0
        attempt.reason = message
        self.health.on_success(call.key.name, time.monotonic() - started, target.endpoint())
        ctx.provider, ctx.upstream_model = target.provider, target.upstream_model
        same_dialect = call.translation is None
        relayable = OBJECT_START.match(raw) is not None  # not an HTML page or a plain text
        if relayable and (same_dialect and op.kind == "chat" or op.kind == "embeddings"):
            resp = Response(status=status, body=raw, content_type="application/json")
            ctx.error_type, ctx.error_message = "upstream_error", message
            with_gateway_headers(resp, ctx, target)
            if ctx.raw is not None:
                ctx.capture_response(resp.headers, raw, RAW_CAPTURE_BYTES)
            return resp
        raise UpstreamError(
            f"Upstream {target.provider} answered {status}: {message}",
            status=status,
            error_type="invalid_request_error" if status < 500 else "api_error",
        )

    def exhausted(self, route: Route, failures: list[Failure]) -> GatewayError:
        now = time.monotonic()
        units = [self.health.unit(k.name) for t in route.targets for k in t.keys]
        if not units:
            return UpstreamUnavailable(
                f"No provider for model '{route.name}' has an API key configured; set one and restart."
            )
        soonest = min((u.cooldown_until for u in units), default=now)
        wait = max(1, int(soonest - now + 0.999))
        listed = "; ".join(
            f"{f.provider}: {f.status if f.status is not None else 'no answer'} {f.reason}"
            for f in failures
        )
        all_rate_limited = bool(units) and all(
            u.rate_limited and u.cooldown_until > now for u in units
        )
        if not failures:
            message = f"Every upstream for model '{route.name}' is cooling down after recent failures; retry in {wait}s."
        else:
            message = f"No upstream could serve model '{route.name}' after {len(failures)} attempt(s): {listed}"
        if all_rate_limited:
            return AllRateLimited(message, headers={"retry-after": str(wait)})
        if failures and all(f.invalid for f in failures):
            return UpstreamInvalid(message)
        statuses = {f.status for f in failures}
        if len(statuses) == 1 and (status := statuses.pop()) == 529:
            # Every upstream was overloaded: 529 keeps that meaning for Anthropic clients.
            return UpstreamUnavailable(message, status=status)
        return UpstreamUnavailable(
            message, headers={"retry-after": str(wait)} if not failures else {}
        )


def is_fault(status: int | None, invalid: bool = False) -> bool:
    """Whether a failed attempt was the endpoint's trouble: no answer, a 408 or 5xx, or an
    answer that broke or was not its API's (a status below 400 that still failed)."""
    return status is None or status < 400 or status == 408 or status >= 500 or invalid


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
