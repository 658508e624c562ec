"""The attempt loop: pick a candidate, translate, send, classify, cool down, retry.

Failover is possible until the first byte reaches the client. For streams the first upstream
chunk is awaited before the client's response starts, so an upstream that accepts and then
dies before saying anything is failed over too. After that, a failure becomes an error event in
the client's dialect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson

from apex_ai_proxy.config import RetryConfig
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.dispatch.answers import start_stream, whole_response
from apex_ai_proxy.dispatch.failures import Call, Cooldown, Failure
from apex_ai_proxy.dispatch.operation import Operation
from apex_ai_proxy.dispatch.planning import translation_for, upstream_body
from apex_ai_proxy.dispatch.pool import KeyPool, estimate_tokens
from apex_ai_proxy.dispatch.settings import ProviderSettings
from apex_ai_proxy.dispatch.walk import Walk
from apex_ai_proxy.errors import GatewayError, UpstreamInvalid
from apex_ai_proxy.health import HealthState
from apex_ai_proxy.http import Request, StreamResponse, UpstreamBodyTooLarge
from apex_ai_proxy.providers.base import ApiKey, Target, UpstreamRequest
from apex_ai_proxy.relay import ClientStream
from apex_ai_proxy.routing import Route
from apex_ai_proxy.routing.balancer import Balancer
from apex_ai_proxy.telemetry.record import Attempt
from apex_ai_proxy.translate import Translation
from apex_ai_proxy.upstream import (
    CONNECTION_ERRORS,
    UpstreamClient,
    UpstreamResponse,
    describe_failure,
)

#: Failures that may carry a quota signal (429, invalid key): read while the pool is still off.
LEARNABLE = frozenset({401, 403, 429})


class Dispatcher:
    def __init__(
        self,
        client: UpstreamClient,
        health: HealthState,
        balancer: Balancer,
        retry: RetryConfig,
        scrub: Callable[[str], str] = str,
        pool: KeyPool | None = None,
    ) -> None:
        self.client = client
        self.health = health
        self.balancer = balancer
        self.retry = retry
        self.pool = pool  # the key pool (quotas); None: keys only rotate and cool down
        self.cooldown = Cooldown(health, retry.failover_statuses, scrub)
        self.settings_for = ProviderSettings().for_target
        self._scrub_bytes = self.cooldown.scrub_bytes  # bound once: passed on every answer

    def run(
        self,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        route: Route,
        body: dict,
        stream: bool,
        extra_headers: dict[str, str],
    ) -> Coroutine[Any, Any, StreamResponse]:
        """The request's attempts, to be awaited: through the key pool when quotas are
        configured or learned, else the keys in the balancer's order. A plain function that
        hands back the coroutine of the one it chose: no frame of its own between the endpoint
        and the attempts (it would be passed through on every resume)."""
        options = body.get("stream_options")
        ctx.wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        pool = self.pool
        if pool is not None and pool.active:
            return self._run_pooled(pool, request, ctx, op, route, body, stream, extra_headers)
        return self._run_plain(request, ctx, op, route, body, stream, extra_headers)

    async def _run_plain(
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
        attempts_left = self.retry.max_attempts
        cache: dict[str, Translation | None] = {}
        # One turn of the loop before the first upstream call: a close or half-close that came
        # right behind the request is read now, and `request.disconnected` says so. Here, not
        # in HttpProtocol._run: a turn there cost 13-20 % CPU per chat request at c=50
        # (bench/results/2026-12-02-end-of-day.md).
        await asyncio.sleep(0)
        pool = self.pool
        for target, key in self.balancer.candidates(route):
            if attempts_left == 0:
                break
            attempts_left -= 1
            if request.disconnected:  # nobody will read the answer: spend no upstream quota
                raise _client_gone()
            call = self._call(op, target, key, body, stream, ctx, cache, failures)
            response = await self._attempt(
                call, request=request, ctx=ctx, op=op, extra_headers=extra_headers
            )
            if response is not None:
                return response
            if pool is not None and call.record.status in LEARNABLE:
                await pool.learn(call)  # a quota signal turns the pool on for what follows
        raise self.cooldown.exhausted(route, failures)

    async def _run_pooled(
        self,
        pool: KeyPool,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        route: Route,
        body: dict,
        stream: bool,
        extra_headers: dict[str, str],
    ) -> StreamResponse:
        """The attempt loop with the key pool: candidates in headroom order, each attempt on a
        reservation (keys known to be out are never called), its answer learned from and its
        usage settled. All keys out: 429 with Retry-After, no upstream called. The usual
        request (room for the key the walk would try first, no round trip) makes no walk:
        take_first reserves it, and a walk is made only when that attempt fails
        (bench/results/2026-12-02-key-pool-session-4.md)."""
        failures: list[Failure] = []
        cache: dict[str, Translation | None] = {}
        await asyncio.sleep(0)  # a close right behind the request is seen (see _run_plain)
        offered = list(self.balancer.candidates(route))
        tokens = estimate_tokens(ctx, body)
        walk: Walk | None = None
        first = pool.take_first(route, offered, tokens)  # room for the walk's first key
        if first is not None:  # the usual request: no walk unless it fails over
            target, key, reservation, pool_headers = first
        else:
            walk = pool.walk(
                route, offered, self.balancer.candidates, tokens, body, request.headers
            )
            if not walk.ready:  # every key known to be out: wait (queue_timeout_s) or the 429
                await walk.wait()
            if walk.session is not None:  # a conversation: its pin may be another replica's
                await walk.follow_shared_pin()
            picked = walk.take_now() or await walk.next()  # take_now: local state, no await
            if picked is None:
                raise self.cooldown.exhausted(route, failures)
            target, key, reservation = picked
            pool_headers = pool.headers(walk.listed)
        attempts_left = self.retry.max_attempts
        while True:
            attempts_left -= 1
            if request.disconnected:
                pool.release(reservation, target, key)
                raise _client_gone()
            call = self._call(op, target, key, body, stream, ctx, cache, failures)
            call.pool_headers = pool_headers
            response = None
            try:
                response = await self._attempt(
                    call, request=request, ctx=ctx, op=op, extra_headers=extra_headers
                )
            finally:
                learned = pool.after(call, reservation, ctx, response is not None, walk)
                if learned is not None:  # the answer taught something: noted in the ledger
                    await learned
            if response is not None:
                return response
            if walk is None:  # the first key failed: the walk has what is left, and the 429
                walk = pool.walk(
                    route, offered, self.balancer.candidates, tokens, body, request.headers
                )
                walk.passed(reservation.unit)
            if not attempts_left:
                break
            picked = walk.take_now() or await walk.next()
            if picked is None:
                break
            target, key, reservation = picked
        if failures and all(f.rate_limited for f in failures):
            spent = walk.spent()  # the keys tried answered 429, the rest are known to be out
            if spent is not None:
                raise spent
        raise self.cooldown.exhausted(route, failures)

    def _call(
        self,
        op: Operation,
        target: Target,
        key: ApiKey,
        body: dict,
        stream: bool,
        ctx: RequestContext,
        cache: dict[str, Translation | None],
        failures: list[Failure],
    ) -> Call:
        translation = translation_for(op, target, body, ctx, cache)
        return Call(
            target,
            key,
            upstream_body(op, target, body, stream, translation),
            translation,
            stream,
            Attempt(target.provider, key.name, target.upstream_model),
            failures,
        )

    # --- one attempt ---------------------------------------------------------------------------

    async def _attempt(
        self,
        call: Call,
        *,
        request: Request,
        ctx: RequestContext,
        op: Operation,
        extra_headers: dict[str, str],
    ) -> StreamResponse | None:
        target = call.target
        key = call.key
        translation = call.translation
        attempt = call.record
        cooldown = self.cooldown
        ctx.attempts.append(attempt)
        unit = self.health.unit(key.name)
        unit.in_flight += 1
        started = call.started = time.monotonic()
        try:
            try:
                upstream = await self._send(call, op, extra_headers)
            except CONNECTION_ERRORS as exc:
                return cooldown.fail(call, status=None, reason=describe_failure(exc))
            call.upstream = upstream
            attempt.status = upstream.status
            ttfb = time.monotonic() - started
            if upstream.status >= 400:
                return await cooldown.upstream_error(ctx, op, call, upstream)
            ctx.provider, ctx.upstream_model, ctx.price = (
                target.provider,
                target.upstream_model,
                target.price,
            )
            if not call.stream or op.kind != "chat":
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
                    return cooldown.fail(call, status=upstream.status, reason=describe_failure(exc))
                try:
                    answer = whole_response(
                        ctx, op, target, raw, upstream, translation, self._scrub_bytes
                    )
                except UpstreamInvalid as exc:  # a broken upstream: the next one may answer
                    return cooldown.fail(
                        call, status=upstream.status, reason=exc.message, invalid=True
                    )
                if call.pool_headers and ctx.key_hold is None:  # else the key's own show
                    answer.headers.update(call.pool_headers)
                self.health.on_success(key.name, ttfb, target.endpoint())
                attempt.latency_ms = (time.monotonic() - started) * 1000.0
                ctx.ttfb_ms = ctx.elapsed_ms()
                if op.tap is not None:
                    answer.body = await op.tap.body(ctx, answer.body)  # type: ignore[arg-type]
                    ctx.bytes_out = len(answer.body)  # type: ignore[arg-type]
                return answer
            try:
                first = await upstream.next_chunk()
            except CONNECTION_ERRORS as exc:
                return cooldown.fail(call, status=upstream.status, reason=describe_failure(exc))
            if first is None:
                return cooldown.fail(
                    call, status=upstream.status, reason="stream closed before any data"
                )
            stream_in: ClientStream | None = None
            if translation is not None:
                stream_in = translation.stream()
                try:
                    stream_in.prime(first)
                except UpstreamInvalid as exc:
                    upstream.release()
                    return cooldown.fail(
                        call, status=upstream.status, reason=exc.message, invalid=True
                    )
            self.health.on_success(key.name, ttfb, target.endpoint())
            attempt.latency_ms = ttfb * 1000.0
            return await start_stream(
                request,
                ctx,
                op,
                target,
                first,
                upstream,
                stream_in,
                self._scrub_bytes,
                call.pool_headers,
            )
        finally:
            unit.in_flight -= 1

    def _send(
        self, call: Call, op: Operation, extra_headers: dict[str, str]
    ) -> Awaitable[UpstreamResponse]:
        target = call.target
        adapter = target.adapter
        base = adapter.base_for(target)
        if op.kind == "embeddings":
            url = adapter.embeddings_url(base, target.upstream_model)
        else:
            url = adapter.chat_url(base, target.upstream_model, call.stream)
        assert url is not None
        # Client headers such as anthropic-beta only mean something to an upstream of the same dialect.
        passed = extra_headers if adapter.dialect == op.client_dialect else None
        return adapter.send(
            self.client,
            adapter.build(target, call.key, url, call.body, passed),
            *self.settings_for(target),
        )

    # --- count_tokens ----------------------------------------------------------------------------

    async def count_tokens(
        self,
        request: Request,
        ctx: RequestContext,
        route: Route,
        body: dict,
        extra_headers: dict[str, str],
        dialect: str = "anthropic",
    ) -> dict | None:
        """The upstream's count of the input tokens of `body` (a request in `dialect`: Anthropic
        Messages or Gemini), asked of the route's first upstream of that dialect that can count;
        its answer (`{"input_tokens": N}` / `{"totalTokens": N, …}`), or None when none could
        (the endpoint then estimates).

        Walks the candidates as `run` does, with the same classification and cooldown: a 429,
        a 5xx or an unreachable upstream cools the key down and the next one is asked; 401/403
        cool the key down for long. Any other 4xx (an upstream without the endpoint, a body it
        will not count) ends the walk: another upstream would most likely answer the same.
        """
        failures: list[Failure] = []
        attempts_left = self.retry.max_attempts
        for target, key in self.balancer.candidates(route):
            adapter = target.adapter
            if adapter.dialect != dialect:
                continue
            count_url = adapter.count_tokens_url(adapter.base_for(target), target.upstream_model)
            if count_url is None:
                continue
            if attempts_left == 0:
                break
            attempts_left -= 1
            if request.disconnected:
                raise _client_gone()
            pool = self.pool
            if pool is not None and pool.active and await pool.quarantined(target, key):
                continue  # known invalid (401/403): not asked until its probe is due
            call = Call(
                target,
                key,
                dumps(adapter.count_tokens_body(body, target.upstream_model)),
                None,
                False,
                Attempt(target.provider, key.name, target.upstream_model),
                failures,
            )
            passed = extra_headers or None
            upstream_request = adapter.build(target, key, count_url, call.body, passed)
            done, count = await self._count(ctx, call, upstream_request)
            if pool is not None and call.record.status in (401, 403):
                # A rejected key is rejected for messages too. A 429 is not learned: counting
                # has its own rate limits upstream, apart from the key's requests.
                await pool.learn(call)
            if done:
                return count
        return None

    async def _count(
        self, ctx: RequestContext, call: Call, upstream_request: UpstreamRequest
    ) -> tuple[bool, dict | None]:
        """One count_tokens attempt: (True, the upstream's answer or None to give up), or
        (False, None) after failing over."""
        target, key, attempt = call.target, call.key, call.record
        ctx.attempts.append(attempt)
        unit = self.health.unit(key.name)
        unit.in_flight += 1
        started = call.started = time.monotonic()
        try:
            try:
                upstream = await target.adapter.send(
                    self.client, upstream_request, *self.settings_for(target)
                )
            except CONNECTION_ERRORS as exc:
                self.cooldown.fail(call, status=None, reason=describe_failure(exc))
                return _FAILED_OVER
            attempt.status = status = upstream.status
            call.upstream = upstream
            if status >= 400:
                _, message = await self.cooldown.read_error(call, upstream)
                if self.cooldown.failed_over(call, status, message, upstream.headers):
                    return _FAILED_OVER
                attempt.latency_ms = (time.monotonic() - started) * 1000.0
                attempt.reason = message
                self.health.on_success(key.name, time.monotonic() - started, target.endpoint())
                return True, None
            try:
                raw = await upstream.read(target.adapter.config.max_response_bytes)
            except CONNECTION_ERRORS as exc:  # too large included
                self.cooldown.fail(call, status=status, reason=describe_failure(exc))
                return _FAILED_OVER
            count = _token_count(raw, target.adapter.count_tokens_field)
            if count is None:
                reason = f"Upstream {target.provider} answered count_tokens without a token count."
                self.cooldown.fail(call, status=status, reason=reason, invalid=True)
                return _FAILED_OVER
            elapsed = time.monotonic() - started
            self.health.on_success(key.name, elapsed, target.endpoint())
            attempt.latency_ms = elapsed * 1000.0
            ctx.provider, ctx.upstream_model = target.provider, target.upstream_model
            ctx.ttfb_ms = elapsed * 1000.0
            return True, count
        finally:
            unit.in_flight -= 1


_FAILED_OVER = (False, None)  # a count_tokens attempt failed over: ask the next candidate


def _token_count(raw: bytes, field: str) -> dict | None:
    """The upstream's count_tokens answer when its `field` is a whole number, else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    count = data.get(field) if isinstance(data, dict) else None
    return data if isinstance(count, int) and not isinstance(count, bool) else None


def _client_gone() -> GatewayError:
    return GatewayError(
        "The client closed the connection before the answer; no upstream was called.",
        status=499,
        error_type="client_disconnected",
    )
