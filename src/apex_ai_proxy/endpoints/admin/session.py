"""The console's session (see console_session.py for the cookie and the CSRF token).

    POST   /admin/session   {"token": "<admin token>"} (JSON only: a cross-site form cannot
                            send it) → sets the session cookie; answers {"admin", "csrf"}
    GET    /admin/session   who is logged in, and the CSRF token for this session's changes
    DELETE /admin/session   log out (clears the cookie; needs the CSRF token like any change)

A client token never opens a session (403), a wrong one gets 401, and with no admin_tokens
these routes do not exist (404), like the rest of the admin API.
"""

from __future__ import annotations

import orjson

from apex_ai_proxy import console_session as cookies
from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import BadRequest, GatewayError
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

from ._common import json_answer


def secure(request: Request) -> bool:
    """Served over https (the gateway behind a TLS proxy says so in X-Forwarded-Proto)."""
    return request.headers.get("x-forwarded-proto", "").lower() == "https"


def login(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise GatewayError(
                'Send the admin token as JSON: {"token": "…"}.',
                status=415,
                error_type="invalid_request_error",
                code="json_required",
            )
        try:
            token = orjson.loads(await request.read()).get("token")
        except (orjson.JSONDecodeError, AttributeError):
            raise BadRequest("The body must be a JSON object with a token.") from None
        if not isinstance(token, str):
            raise BadRequest("token must be a string.", param="token")
        name = services.admin.login(token)
        ctx.token_name = name
        secret = services.admin.secret(name)
        value = cookies.open_session(name, secret)
        resp = json_answer({"admin": name, "csrf": cookies.csrf_token(value, secret)}, ctx)
        resp.headers["set-cookie"] = cookies.set_cookie(value, secure(request))
        return resp

    return handle


def whoami(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        return json_answer({"admin": ctx.token_name, "csrf": _csrf(services, request)}, ctx)

    return handle


def _csrf(services: Services, request: Request) -> str | None:
    """The CSRF token of the request's session cookie, when it has a valid one."""
    value = cookies.cookie_from(request.headers.get("cookie"))
    name = cookies.session_name(value or "")
    if value is None or name is None:
        return None
    try:
        secret = services.admin.secret(name)
    except KeyError:
        return None
    return cookies.csrf_token(value, secret) if cookies.verify_session(value, secret) else None


def logout(services: Services) -> Handle:
    async def handle(request: Request, ctx: RequestContext) -> Response:
        resp = json_answer({"admin": None}, ctx)
        resp.headers["set-cookie"] = cookies.clear_cookie(secure(request))
        return resp

    return handle
