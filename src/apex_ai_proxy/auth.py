"""Gateway tokens: clients send one as `Authorization: Bearer …` or `x-api-key`.

A token has two public identities, neither of which reveals it: its NAME, "token-N" by its
position in `gateway_tokens`, which records show; and its OWNER, a fingerprint of the token
itself, which owns what the token stores (Responses API records), so that removing or
reordering tokens hands nothing to another token.
"""

from __future__ import annotations

import hashlib
import hmac

from apex_ai_proxy.errors import Unauthorized
from apex_ai_proxy.http import Request

_OWNER_DOMAIN = b"apex-ai-proxy/owner\0"  # keeps the fingerprint apart from other token hashes


def token_owner(token: str) -> str:
    """The stable owner of what `token` stores: 96 bits of a domain-separated SHA-256.

    Stored beside records, so it must not give the token back: a gateway token is meant to be
    a long random string, and this is one-way. Never shown to clients."""
    digest = hashlib.sha256(_OWNER_DOMAIN + token.encode()).hexdigest()
    return "tok_" + digest[:24]


class Authenticator:
    def __init__(self, tokens: list[str]) -> None:
        # token bytes -> name; names are what records show, never the token.
        self._tokens = [(t.encode(), f"token-{i + 1}") for i, t in enumerate(tokens)]
        # name -> owner, hashed once here (never per request). The authenticator lives as long
        # as its gateway, so a name stands for the same token for every request it serves.
        self._owners = {f"token-{i + 1}": token_owner(t) for i, t in enumerate(tokens)}

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def owner(self, token_name: str | None) -> str | None:
        """The owner of the token `check` named (None without tokens: one shared scope)."""
        return None if token_name is None else self._owners[token_name]

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
        where = header or "an Authorization: Bearer header or x-api-key"
        return self.verify(self.presented(request, header), where)

    def verify(self, given: str | None, where: str) -> str | None:
        """`check` for a token found elsewhere (Gemini clients: x-goog-api-key or ?key=)."""
        if not self._tokens:
            return None
        if not given:
            raise Unauthorized(f"Missing gateway token: send one in {where}.")
        given_bytes = given.encode()
        name = None
        for token, token_name in self._tokens:  # compare with all: timing says nothing about which
            if hmac.compare_digest(token, given_bytes):
                name = token_name
        if name is None:
            raise Unauthorized("Invalid gateway token.")
        return name
