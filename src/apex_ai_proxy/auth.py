"""Gateway tokens: clients send one as `Authorization: Bearer …` or `x-api-key`.

A token has two public identities, neither of which reveals it: its NAME, "token-N" by its
position in `gateway_tokens`, which records show; and its OWNER, a fingerprint of the token
itself, which owns what the token stores (Responses API records), so that removing or
reordering tokens hands nothing to another token.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from apex_ai_proxy import console_session as session
from apex_ai_proxy.errors import Forbidden, NotFound, Unauthorized
from apex_ai_proxy.http import Request


class VirtualChecker(Protocol):
    """virtualkeys.guard.VirtualKeys, as authentication sees it."""

    def knows(self, given: str) -> bool: ...

    def identify(self, given: str) -> str: ...

    def owner(self, name: str) -> str | None: ...


_OWNER_DOMAIN = b"apex-ai-proxy/owner\0"  # keeps the fingerprint apart from other token hashes


def token_owner(token: str) -> str:
    """The stable owner of what `token` stores: 96 bits of a domain-separated SHA-256.

    Stored beside records, so it must not give the token back: a gateway token is meant to be
    a long random string, and this is one-way. Never shown to clients."""
    digest = hashlib.sha256(_OWNER_DOMAIN + token.encode()).hexdigest()
    return "tok_" + digest[:24]


class Authenticator:
    """Gateway tokens, and virtual keys once `accept_virtual` hands it their checker: a
    presented token that is none of the gateway tokens is looked up there (no I/O, no await:
    an in-memory lookup). Without virtual keys nothing here changes per request."""

    def __init__(self, tokens: list[str], name_prefix: str = "token") -> None:
        # token bytes -> name; names are what records show, never the token.
        names = [f"{name_prefix}-{i + 1}" for i in range(len(tokens))]
        self._tokens = [(t.encode(), name) for t, name in zip(tokens, names, strict=True)]
        # name -> owner, hashed once here (never per request). The authenticator lives as long
        # as its gateway, so a name stands for the same token for every request it serves.
        self._owners = {name: token_owner(t) for t, name in zip(tokens, names, strict=True)}
        self._virtual: VirtualChecker | None = None
        self._on = bool(tokens)  # tokens or virtual keys: a token is required

    def accept_virtual(self, virtual: VirtualChecker) -> None:
        self._virtual = virtual
        self._on = True

    @property
    def enabled(self) -> bool:
        return self._on

    def owner(self, token_name: str | None) -> str | None:
        """The owner of the token `check` named (None without tokens: one shared scope)."""
        if token_name is None:
            return None
        owner = self._owners.get(token_name)
        if owner is None and self._virtual is not None:
            owner = self._virtual.owner(token_name)
        if owner is None:
            raise KeyError(token_name)
        return owner

    def presented(self, request: Request, header: str | None = None) -> str | None:
        headers = request.headers
        if header is not None:
            return headers.get(header)
        auth = headers.get("authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return headers.get("x-api-key")

    def check(self, request: Request, header: str | None = None) -> str | None:
        """The name of the token presented; raises Unauthorized when tokens are on and it is wrong."""
        if not self._on:
            return None
        where = header or "an Authorization: Bearer header or x-api-key"
        return self.verify(self.presented(request, header), where)

    def knows(self, given: str) -> bool:
        """Whether `given` is one of these tokens (compared with all, as `verify` does)."""
        given_bytes = given.encode()
        found = False
        for token, _ in self._tokens:
            found |= hmac.compare_digest(token, given_bytes)
        if not found and self._virtual is not None:
            return self._virtual.knows(given)
        return found

    def verify(self, given: str | None, where: str) -> str | None:
        """`check` for a token found elsewhere (Gemini clients: x-goog-api-key or ?key=)."""
        if not self._on:
            return None
        if not given:
            raise Unauthorized(f"Missing gateway token: send one in {where}.")
        given_bytes = given.encode()
        name = None
        for token, token_name in self._tokens:  # compare with all: timing says nothing about which
            if hmac.compare_digest(token, given_bytes):
                name = token_name
        if name is None:
            if self._virtual is not None:
                return self._virtual.identify(given)
            raise Unauthorized("Invalid gateway token.")
        return name


class AdminAuth:
    """Admin tokens (`admin_tokens`): the admin API and the console, nothing else.

    Without admin tokens the admin API does not exist (404). A request without a token, or
    with a wrong one, gets 401; one with a client's token (a gateway token, which can do
    nothing here, and so is a virtual key) gets 403, so a person who mixed the two up learns which they sent. Names are
    "admin-N" by position, for records."""

    def __init__(self, admin_tokens: list[str], clients: Authenticator) -> None:
        self._admins = Authenticator(admin_tokens, name_prefix="admin")
        self._clients = clients

    @property
    def enabled(self) -> bool:
        return self._admins.enabled

    def require_enabled(self, request: Request) -> None:
        """Only that the admin API is on (the login form's POST: its token is in the body)."""
        if not self._admins.enabled:
            raise NotFound(
                "The admin API is off: configure admin_tokens to turn it on.", code="admin_off"
            )

    def check(self, request: Request) -> str:
        """The admin's name, from `Authorization: Bearer` (or x-api-key) or the console's
        session cookie; a cookie's change (any method but GET/HEAD) also needs its CSRF token."""
        self.require_enabled(request)
        given = self._admins.presented(request)
        if not given:
            cookie = session.cookie_from(request.headers.get("cookie"))
            if cookie is not None:
                return self._check_session(request, cookie)
            raise Unauthorized("Missing admin token: send Authorization: Bearer <admin token>.")
        return self.login(given)

    def login(self, given: str) -> str:
        """The name of admin token `given`: 403 for a client's token, 401 for anything else."""
        if given and self._admins.knows(given):
            name = self._admins.verify(given, "Authorization: Bearer")
            assert name is not None
            return name
        if given and self._clients.enabled and self._clients.knows(given):
            raise Forbidden(
                "This is a client token; the admin API takes an admin token (admin_tokens).",
                code="not_an_admin_token",
            )
        raise Unauthorized("Invalid admin token.")

    def secret(self, name: str) -> bytes:
        """The token of admin `name` (signs its console sessions); KeyError when unknown."""
        for token, token_name in self._admins._tokens:
            if token_name == name:
                return token
        raise KeyError(name)

    def _check_session(self, request: Request, cookie: str) -> str:
        name = session.session_name(cookie)
        try:
            secret = self.secret(name or "")
        except KeyError:
            secret = b""
        if not secret or not session.verify_session(cookie, secret):
            raise Unauthorized("The console session is invalid or has expired: log in again.")
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get(session.CSRF_HEADER) or ""
            if not hmac.compare_digest(given, session.csrf_token(cookie, secret)):
                raise Forbidden(
                    f"A change from the console needs its {session.CSRF_HEADER} header.",
                    code="csrf_token_missing",
                )
        assert name is not None
        return name
