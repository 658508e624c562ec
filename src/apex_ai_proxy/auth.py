"""Gateway tokens: clients send one as `Authorization: Bearer …` or `x-api-key`."""

from __future__ import annotations

import hmac

from apex_ai_proxy.errors import Unauthorized
from apex_ai_proxy.http import Request


class Authenticator:
    def __init__(self, tokens: list[str]) -> None:
        # token bytes -> name; names are what records show, never the token.
        self._tokens = [(t.encode(), f"token-{i + 1}") for i, t in enumerate(tokens)]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

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
        if not self._tokens:
            return None
        given = self.presented(request, header)
        if not given:
            where = header or "an Authorization: Bearer header or x-api-key"
            raise Unauthorized(f"Missing gateway token: send one in {where}.")
        given_bytes = given.encode()
        name = None
        for token, token_name in self._tokens:  # compare with all: timing says nothing about which
            if hmac.compare_digest(token, given_bytes):
                name = token_name
        if name is None:
            raise Unauthorized("Invalid gateway token.")
        return name
