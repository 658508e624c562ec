"""Dispatch: the attempt loop. Pick a candidate, translate, send, classify, cool down, retry.

Failover is possible until the first byte reaches the client. For streams the first upstream
chunk is awaited before the client's response starts, so an upstream that accepts and then
dies before saying anything is failed over too. After that, a failure becomes an error event in
the client's dialect.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

import orjson

from apex_ai_proxy.balancer import Balancer
from apex_ai_proxy.config import RetryConfig
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.errors import (
    AllRateLimited,
    GatewayError,
    UpstreamError,
    UpstreamInvalid,
    UpstreamUnavailable,
    carries_error,
    upstream_error_message,
)
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.http import (
    ClientOptions,
    Request,
    Response,
    StreamResponse,
    Timeouts,
    UpstreamBodyTooLarge,
)
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.relay import (
    RAW_CAPTURE_BYTES,
    ClientStream,
    SameDialectStream,
    ScrubbedStream,
    StreamSink,
    client_sink,
    relay_stream,
)
from apex_ai_proxy.routing import Route
from apex_ai_proxy.telemetry.record import Attempt
from apex_ai_proxy.telemetry.redact import REDACTED
from apex_ai_proxy.translate import Translation, plan_translation
from apex_ai_proxy.upstream import (
    CONNECTION_ERRORS,
    UpstreamClient,
    UpstreamResponse,
    describe_failure,
)
from apex_ai_proxy.usage import usage_from_body, usage_from_raw


class ClientTap(Protocol):
    """Sees what the client receives, after translation (the Responses API stores answers so).

    `body` gets a whole answer before it is sent and returns what to send; `stream` wraps the
    started stream response and sees every byte, in order, before the client does.
    """

    async def body(self, ctx: RequestContext, raw: bytes) -> bytes: ...

    def stream(self, resp: StreamSink, ctx: RequestContext) -> StreamSink: ...


@dataclass(slots=True)
class Operation:
    """What the client asked for: chat in some dialect, or embeddings."""

    client_dialect: str
    kind: str = "chat"  # "chat" | "embeddings"
    tap: ClientTap | None = None  # per request; None everywhere but /v1/responses


@dataclass(slots=True)
class Failure:
    provider: str
    status: int | None
    reason: str
    retry_after: float | None = None
    rate_limited: bool = False
    invalid: bool = False  # answered 2xx with something that is not its API's answer


@dataclass(slots=True)
class AttemptPlan:
    target: Target
    key: ApiKey
    body: bytes
    translation: Translation | None
    failures: list[Failure] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        client: UpstreamClient,
        health: HealthState,
        balancer: Balancer,
        retry: RetryConfig,
        scrub: Callable[[str], str] = str,
    ) -> None:
        self.scrub = scrub  # removes every configured secret from text bound for the client
        self.client = client
        self.health = health
        self.balancer = balancer
        self.retry = retry
        self.failover_statuses = frozenset(retry.failover_statuses)
        self._settings: dict[int, tuple[Timeouts, ClientOptions]] = {}

    def settings_for(self, target: Target) -> tuple[Timeouts, ClientOptions]:
        """Timeouts and TLS, proxy and pool settings of the target's provider, built once per
        adapter (the client keys its pools by the options object's identity)."""
        adapter = target.adapter
        settings = self._settings.get(id(adapter))
        if settings is None:
            cfg = adapter.config
            settings = self._settings[id(adapter)] = (
                Timeouts(cfg.timeout, cfg.connect_timeout, cfg.read_timeout or cfg.timeout),
                ClientOptions(
                    ca_file=cfg.ca_file,
                    tls_verify=cfg.tls_verify,
                    proxy=cfg.proxy,
                    max_connections=cfg.max_connections,
                    pool_timeout=cfg.pool_timeout,
                    idle_timeout=cfg.idle_timeout,
                ),
            )
        return settings

    async def run(
        self,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        route: Route,
        body: dict,
        stream: bool,
        extra_headers: dict[str, str],
    ) -> StreamResponse:
        failures: list[Failure] = []
        options = body.get("stream_options")
        ctx.wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        attempts_left = self.retry.max_attempts
        translation_cache: dict[str, Translation | None] = {}
        # One turn of the loop before the first upstream call: a close or half-close that came
        # right behind the request is read now, and `request.disconnected` says so.
        await asyncio.sleep(0)
        for target, key in self.balancer.candidates(route):
            if attempts_left == 0:
                break
            attempts_left -= 1
            if request.disconnected:  # nobody will read the answer: spend no upstream quota
                raise GatewayError(
                    "The client closed the connection before the answer; no upstream was called.",
                    status=499,
                    error_type="client_disconnected",
                )
            translation = self._translation(op, target, body, ctx, translation_cache)
            upstream_body = self._upstream_body(op, target, body, stream, translation)
            response = await self._attempt(
                request,
                ctx,
                op,
                target,
                key,
                upstream_body,
                stream,
                translation,
                extra_headers,
                failures,
            )
            if response is not None:
                return response
        raise self._exhausted(route, failures)

    # --- one attempt ---------------------------------------------------------------------------

    async def _attempt(
        self,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        target: Target,
        key: ApiKey,
        upstream_body: bytes,
        stream: bool,
        translation: Translation | None,
        extra_headers: dict[str, str],
        failures: list[Failure],
    ) -> StreamResponse | None:
        attempt = Attempt(target.provider, key.name, target.upstream_model)
        ctx.attempts.append(attempt)
        unit = self.health.unit(key.name)
        unit.in_flight += 1
        started = time.monotonic()
        try:
            try:
                upstream = await self._send(op, target, key, upstream_body, stream, extra_headers)
            except CONNECTION_ERRORS as exc:
                return self._fail(
                    attempt, failures, target, key, None, describe_failure(exc), started
                )
            attempt.status = upstream.status
            ttfb = time.monotonic() - started
            if upstream.status >= 400:
                return await self._upstream_error(
                    ctx, op, target, key, upstream, attempt, failures, started, translation
                )
            ctx.provider, ctx.upstream_model, ctx.price = (
                target.provider,
                target.upstream_model,
                target.price,
            )
            if not stream or op.kind != "chat":
                try:
                    raw = await upstream.read(target.adapter.config.max_response_bytes)
                except UpstreamBodyTooLarge as exc:
                    # Not a reason to fail over: the upstream answered, and another would most
                    # likely answer the same (and be paid for it again). No cooldown either.
                    attempt.reason = str(exc)
                    raise GatewayError(
                        "upstream answer too large: it exceeds this provider's "
                        f"max_response_bytes ({target.adapter.config.max_response_bytes})",
                        status=502,
                        error_type="upstream_error",
                        code="upstream_response_too_large",
                    ) from None
                except CONNECTION_ERRORS as exc:
                    return self._fail(
                        attempt,
                        failures,
                        target,
                        key,
                        upstream.status,
                        describe_failure(exc),
                        started,
                    )
                try:
                    answer = self._whole_response(ctx, op, target, raw, upstream, translation)
                except UpstreamInvalid as exc:  # a broken upstream: the next one may answer
                    return self._fail(
                        attempt,
                        failures,
                        target,
                        key,
                        upstream.status,
                        exc.message,
                        started,
                        invalid=True,
                    )
                self.health.on_success(key.name, ttfb)
                attempt.latency_ms = (time.monotonic() - started) * 1000.0
                ctx.ttfb_ms = ctx.elapsed_ms()
                if op.tap is not None:
                    answer.body = await op.tap.body(ctx, answer.body)  # type: ignore[arg-type]
                    ctx.bytes_out = len(answer.body)  # type: ignore[arg-type]
                return answer
            try:
                first = await upstream.next_chunk()
            except CONNECTION_ERRORS as exc:
                return self._fail(
                    attempt, failures, target, key, upstream.status, describe_failure(exc), started
                )
            if first is None:
                return self._fail(
                    attempt,
                    failures,
                    target,
                    key,
                    upstream.status,
                    "stream closed before any data",
                    started,
                )
            stream_in: ClientStream | None = None
            if translation is not None:
                stream_in = translation.stream()
                try:
                    stream_in.prime(first)
                except UpstreamInvalid as exc:
                    upstream.release()
                    return self._fail(
                        attempt,
                        failures,
                        target,
                        key,
                        upstream.status,
                        exc.message,
                        started,
                        invalid=True,
                    )
            self.health.on_success(key.name, ttfb)
            attempt.latency_ms = ttfb * 1000.0
            return await self._relay_stream(request, ctx, op, target, first, upstream, stream_in)
        finally:
            unit.in_flight -= 1

    async def _send(
        self,
        op: Operation,
        target: Target,
        key: ApiKey,
        body: bytes,
        stream: bool,
        extra_headers: dict[str, str],
    ) -> UpstreamResponse:
        adapter = target.adapter
        if adapter.local:
            data = orjson.loads(body)
            if op.kind == "embeddings":
                return await adapter.respond_embeddings(data)  # type: ignore[attr-defined]
            return await adapter.respond_chat(data, stream)  # type: ignore[attr-defined]
        base = adapter.base_for(target)
        if op.kind == "embeddings":
            url = adapter.embeddings_url(base, target.upstream_model)
        else:
            url = adapter.chat_url(base, target.upstream_model, stream)
        assert url is not None
        # Client headers such as anthropic-beta only mean something to an upstream of the same dialect.
        passed = extra_headers if adapter.dialect == op.client_dialect else None
        return await self.client.send(
            adapter.build(target, key, url, body, passed), *self.settings_for(target)
        )

    def _fail(
        self,
        attempt: Attempt,
        failures: list[Failure],
        target: Target,
        key: ApiKey,
        status: int | None,
        reason: str,
        started: float,
        retry_after: float | None = None,
        rate_limited: bool = False,
        auth: bool = False,
        invalid: bool = False,
    ) -> None:
        attempt.latency_ms = (time.monotonic() - started) * 1000.0
        attempt.reason = reason = self.scrub(reason)  # listed in the 503 the client may get
        self.health.on_failure(key.name, retry_after, rate_limited=rate_limited, auth=auth)
        failures.append(
            Failure(target.provider, status, reason, retry_after, rate_limited, invalid)
        )
        return None

    def _without_secrets(self, raw: bytes, key: ApiKey) -> bytes:
        """An upstream's error body with every configured secret removed: upstreams sometimes
        quote the key they were given ("Incorrect API key provided: …"), and the body may be
        relayed to the client as it is."""
        # The key in use is replaced even when short (the redactor skips very short secrets).
        secret = key.secret.encode("utf-8", "surrogateescape") if key.secret else b""
        if secret and secret in raw:
            raw = raw.replace(secret, REDACTED.encode())
        return self._scrub_bytes(raw)

    def _scrub_bytes(self, data: bytes) -> bytes:
        """`data` with every configured secret removed (in any escaping); `data` if none."""
        text = data.decode("utf-8", "surrogateescape")
        clean = self.scrub(text)
        return data if clean is text else clean.encode("utf-8", "surrogateescape")

    async def _upstream_error(
        self,
        ctx: RequestContext,
        op: Operation,
        target: Target,
        key: ApiKey,
        upstream: UpstreamResponse,
        attempt: Attempt,
        failures: list[Failure],
        started: float,
        translation: Translation | None,
    ) -> StreamResponse | None:
        status = upstream.status
        try:
            raw = await upstream.read(target.adapter.config.max_response_bytes)
        except CONNECTION_ERRORS:  # too large included: judged by its status alone
            raw = b""
        raw = self._without_secrets(raw, key)
        message = upstream_error_message(raw)
        if status in (401, 403):
            return self._fail(
                attempt,
                failures,
                target,
                key,
                status,
                f"upstream rejected the key ({status}): {message}",
                started,
                auth=True,
            )
        if status in self.failover_statuses or status >= 500:
            retry_after = parse_retry_after(upstream.headers.get("retry-after"))
            return self._fail(
                attempt,
                failures,
                target,
                key,
                status,
                f"{status}: {message}",
                started,
                retry_after=retry_after,
                rate_limited=status == 429,
            )
        # The client's own mistake: answer as the upstream did, without retrying elsewhere.
        attempt.latency_ms = (time.monotonic() - started) * 1000.0
        attempt.reason = message
        self.health.on_success(key.name, time.monotonic() - started)
        ctx.provider, ctx.upstream_model = target.provider, target.upstream_model
        same_dialect = translation is None
        relayable = _OBJECT_START.match(raw) is not None  # not an HTML page or a plain text
        if relayable and (same_dialect and op.kind == "chat" or op.kind == "embeddings"):
            resp = Response(status=status, body=raw, content_type="application/json")
            ctx.error_type, ctx.error_message = "upstream_error", message
            _with_gateway_headers(resp, ctx, target)
            if ctx.raw is not None:
                ctx.capture_response(resp.headers, raw, RAW_CAPTURE_BYTES)
            return resp
        raise UpstreamError(
            f"Upstream {target.provider} answered {status}: {message}",
            status=status,
            error_type="invalid_request_error" if status < 500 else "api_error",
        )

    # --- answers -----------------------------------------------------------------------------

    def _whole_response(
        self,
        ctx: RequestContext,
        op: Operation,
        target: Target,
        raw: bytes,
        upstream: UpstreamResponse,
        translation: Translation | None,
    ) -> Response:
        upstream_dialect = target.adapter.dialect if op.kind == "chat" else "openai_chat"
        if translation is not None:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                raise _invalid_answer(target)
            ctx.usage = usage_from_body(upstream_dialect, data)
            raw = translation.response(data, target.provider)
        else:
            if _OBJECT_START.match(raw) is None:  # every API answers an object; relayed unread
                raise _invalid_answer(target)
            ctx.usage = usage_from_raw(upstream_dialect, raw)
        if carries_error(raw):
            # A 200 holding an error object may quote the key. Only such bodies are searched:
            # one scan for the marker per answer, no decode of ordinary answers.
            raw = self._scrub_bytes(raw)
        resp = Response(status=upstream.status, body=raw, content_type="application/json")
        ctx.bytes_out = len(raw)
        _with_gateway_headers(resp, ctx, target)
        if ctx.raw is not None:
            ctx.capture_response(resp.headers, raw, RAW_CAPTURE_BYTES)
        return resp

    async def _relay_stream(
        self,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        target: Target,
        first: bytes,
        upstream: UpstreamResponse,
        stream: ClientStream | None,
    ) -> StreamResponse:
        resp = StreamResponse(status=200)
        resp.content_type = "text/event-stream"
        resp.headers["cache-control"] = "no-cache"
        _with_gateway_headers(resp, ctx, target)
        await resp.prepare(request)
        ctx.ttfb_ms = ctx.elapsed_ms()
        sink = client_sink(resp, ctx)
        if op.tap is not None:
            sink = op.tap.stream(sink, ctx)
        if stream is None:
            dialect = target.adapter.dialect
            strip_usage = dialect == "openai_chat" and not ctx.wants_usage
            stream = SameDialectStream(ctx.client_dialect, dialect, strip_usage)
        else:
            first = b""  # primed: the stream holds the first chunk's translation
        stream = ScrubbedStream(stream, self._scrub_bytes)
        await relay_stream(sink, ctx, upstream, first, stream)
        return resp

    # --- helpers -----------------------------------------------------------------------------

    def _translation(
        self,
        op: Operation,
        target: Target,
        body: dict,
        ctx: RequestContext,
        cache: dict[str, Translation | None],
    ) -> Translation | None:
        upstream_dialect = target.adapter.dialect if op.kind == "chat" else "openai_chat"
        if upstream_dialect == op.client_dialect or op.kind != "chat":
            return None
        if upstream_dialect not in cache:
            cache[upstream_dialect] = plan_translation(
                op.client_dialect, upstream_dialect, body, ctx
            )
        return cache[upstream_dialect]

    def _upstream_body(
        self,
        op: Operation,
        target: Target,
        body: dict,
        stream: bool,
        translation: Translation | None,
    ) -> bytes:
        adapter = target.adapter
        if translation is not None:
            data = translation.request(target.upstream_model, stream)
        else:
            data = dict(body)
            if op.kind == "embeddings":
                data["model"] = target.upstream_model
                return dumps(data)
        if adapter.local and translation is None:
            data["model"] = target.upstream_model
            return dumps(data)
        return dumps(adapter.prepare_chat_body(data, target.upstream_model, stream))

    def _exhausted(self, route: Route, failures: list[Failure]) -> GatewayError:
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


_OBJECT_START = re.compile(rb"[ \t\r\n]*\{")


def _invalid_answer(target: Target) -> UpstreamInvalid:
    return UpstreamInvalid(
        f"Upstream {target.provider} answered with something other than a JSON object."
    )


def _with_gateway_headers(
    resp: StreamResponse, ctx: RequestContext, target: Target
) -> StreamResponse:
    headers = resp.headers
    headers["x-request-id"] = ctx.request_id
    headers["x-apex-provider"] = target.provider
    headers["x-apex-model"] = target.upstream_model
    headers["x-apex-attempts"] = str(len(ctx.attempts))
    return resp


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
