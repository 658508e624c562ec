"""The passthrough route: a request carrying X-APEX-AI-PROXY-PROVIDER, whatever its path.

enabled? → gateway token (X-APEX-AI-PROXY-TOKEN unless `open`) → type → method and
origin-form target → provider (allowlist, address checks) → body (+ model mapping) → forward
(which checks method, target and headers again, and drops gateway tokens) → record
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import orjson

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import GatewayError
from apex_ai_proxy.http import Request, StreamResponse
from apex_ai_proxy.pipeline import error_response, read_body

from .config import PassthroughConfig
from .forward import PassthroughClient, error_dialect, forward
from .guard import (
    PROVIDER_HEADER,
    TYPE_HEADER,
    PassthroughRefused,
    check_api_type,
    check_method,
    check_no_stray_token,
    check_request_target,
    resolve_target,
)

if TYPE_CHECKING:
    from apex_ai_proxy.server import Gateway

TOKEN_HEADER = "X-APEX-AI-PROXY-TOKEN"


class Passthrough:
    def __init__(self, gw: Gateway, config: PassthroughConfig) -> None:
        self.gw = gw
        self.config = config
        self.client = PassthroughClient(config) if config.enabled else None
        self._gateway_tokens = tuple(token.encode() for token in gw.config.gateway_tokens)
        # in characters, and in bytes (header values arrive as latin-1: one char per byte)
        tokens = gw.config.gateway_tokens
        self._token_lengths = frozenset(len(t) for t in tokens) | {len(t.encode()) for t in tokens}

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def handle(self, request: Request) -> StreamResponse:
        gw = self.gw
        ctx = RequestContext.new(
            request.path, error_dialect(None, request.path), mode="passthrough"
        )
        try:
            ctx.passthrough_type = check_api_type(request.headers.get(TYPE_HEADER))
            ctx.client_dialect = error_dialect(ctx.passthrough_type, request.path)
            if self.client is None:
                raise PassthroughRefused(
                    "Passthrough is disabled on this gateway (passthrough.enabled is false)."
                )
            if not self.config.open:
                ctx.token_name = gw.auth.check(request, TOKEN_HEADER)
            check_method(request.method)
            _, query = check_request_target(request.raw_path_qs)
            check_no_stray_token(request.headers, query, self.is_gateway_token, self._token_lengths)
            target = await resolve_target(request.headers[PROVIDER_HEADER], self.config)
            ctx.provider = target.origin
            body = await self._read_body(request)
            body = self._map_model(body, request, ctx)
            result = await forward(
                request,
                body,
                target,
                self.client,
                api_type=ctx.passthrough_type,
                request_id=ctx.request_id,
                is_gateway_secret=self.is_gateway_token,
            )
        except GatewayError as err:
            response = error_response(ctx.client_dialect, err, ctx)
            gw.record(ctx)
            return response
        outcome = result.outcome
        ctx.status = outcome.status
        ctx.bytes_in, ctx.bytes_out = outcome.request_bytes, outcome.response_bytes
        ctx.ttfb_ms = outcome.ttfb_ms
        if outcome.error:
            ctx.error_type, ctx.error_message = "passthrough_error", outcome.error
        for name in outcome.dropped_credentials:  # the record says a gateway token was held back
            ctx.dropped_fields.append(f"header:{name}")
        gw.record(ctx)
        return result.response

    def is_gateway_token(self, value: str) -> bool:
        """Whether `value` is one of the gateway tokens. Compared with every token in constant
        time, as the authenticator does: the time says nothing about which or how much matched."""
        try:  # the server decodes header bytes as latin-1: this gives back the bytes sent
            given = value.encode("latin-1")
        except UnicodeEncodeError:
            given = value.encode("utf-8", "surrogatepass")
        found = False
        for token in self._gateway_tokens:
            found |= hmac.compare_digest(token, given)
        return found

    async def _read_body(self, request: Request) -> bytes:
        return await read_body(request, min(self.config.max_body_bytes, self.gw.max_body))

    def _map_model(self, body: bytes, request: Request, ctx: RequestContext) -> bytes:
        """Model mapping works in passthrough too; the body is rewritten only when it changes."""
        if not body or b'"model"' not in body:
            return body
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return body
        ctx.requested_model = data["model"]
        mapped = ctx.mapped_model = self.gw.map_model(data["model"], request)
        if mapped == data["model"]:
            return body
        data["model"] = mapped
        return orjson.dumps(data)
