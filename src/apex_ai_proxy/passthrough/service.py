"""What the passthrough endpoint needs kept for the process: its config, its client (None while
passthrough is disabled) and the gateway tokens it must recognise to hold them back.

The request's steps are in `endpoints/passthrough.py`.
"""

from __future__ import annotations

import hmac

from .config import PassthroughConfig
from .forward import PassthroughClient

TOKEN_HEADER = "X-APEX-AI-PROXY-TOKEN"


class Passthrough:
    def __init__(self, config: PassthroughConfig, gateway_tokens: list[str]) -> None:
        self.config = config
        self.client = PassthroughClient(config) if config.enabled else None
        self.set_gateway_tokens(gateway_tokens)

    def set_gateway_tokens(self, gateway_tokens: list[str]) -> None:
        """The tokens to hold back (again after a config reload, which keeps the client)."""
        self._gateway_tokens = tuple(token.encode() for token in gateway_tokens)
        # in characters, and in bytes (header values arrive as latin-1: one char per byte)
        self.token_lengths = frozenset(len(t) for t in gateway_tokens) | {
            len(t.encode()) for t in gateway_tokens
        }

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

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
