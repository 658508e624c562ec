"""What every provider adapter knows: where to send a request, how to authenticate, which dialect.

An adapter never performs I/O itself: the dispatcher hands what `build` returns to `send`, which
passes it to the one shared HTTP client. Only the local `echo` provider overrides `send`, to answer
in-process; the dispatcher treats it like any other adapter.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from apex_ai_proxy.config import Price, ProviderConfig
from apex_ai_proxy.health.names import endpoint_name
from apex_ai_proxy.http.client import ClientOptions, StableHeaders, Timeouts


@dataclass(slots=True, frozen=True)
class ApiKey:
    """One credential. `name` is what records and errors show; `secret` never leaves the adapter."""

    name: str
    secret: str

    def __repr__(self) -> str:  # keep secrets out of tracebacks and debug output
        return f"ApiKey({self.name!r})"


@dataclass(slots=True)
class Target:
    """One candidate upstream for a request: provider × upstream model × its keys."""

    provider: str
    adapter: ProviderAdapter
    upstream_model: str
    keys: list[ApiKey]
    weight: float = 1.0
    base_url: str | None = None  # per-model-entry override of the provider's base URL
    price: Price | None = None
    _endpoint: str = field(default="", init=False, repr=False, compare=False)

    def endpoint(self) -> str:
        """The endpoint this target's requests go to (provider × base URL, one for all its
        keys): the unit that upstream faults count against (health/faults.py)."""
        name = self._endpoint
        if not name:
            name = self._endpoint = endpoint_name(self.provider, self.adapter.base_for(self))
        return name


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


class Sender(Protocol):
    """The shared HTTP client as an adapter sees it (upstream.UpstreamClient)."""

    def send(
        self, request: UpstreamRequest, timeouts: Timeouts, options: ClientOptions
    ) -> Awaitable[Any]: ...


class ProviderAdapter:
    """Base class: subclasses set `kind` and `dialect` and override the URL/auth hooks."""

    kind: ClassVar[str]
    dialect: ClassVar[str]  # "openai_chat" | "anthropic" | "gemini" | "responses" | "local"
    local: ClassVar[bool] = False
    default_base_url: ClassVar[str | None] = None

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self.base_url = (config.base_url or self.default_base_url or "").rstrip("/")
        self._headers_by_key: dict[str, dict[str, str]] = {}
        self.static_headers = {
            "content-type": "application/json",
            # Compressed answers could not be read for usage or searched for quoted secrets.
            "accept-encoding": "identity",
            **{k.lower(): v for k, v in config.headers.items()},
        }

    def keys_from(self, secrets: list[str], prefix: str | None = None) -> list[ApiKey]:
        prefix = prefix or self.name
        if not secrets and self.local:
            return [ApiKey(f"{prefix}#local", "")]  # a local provider is one unit of health
        return [ApiKey(f"{prefix}#{i}", secret) for i, secret in enumerate(secrets)]

    # --- hooks -------------------------------------------------------------------------------

    def auth_headers(self, key: ApiKey) -> dict[str, str]:
        return {"authorization": f"Bearer {key.secret}"}

    def chat_url(self, base_url: str, upstream_model: str, stream: bool) -> str:
        raise NotImplementedError

    def embeddings_url(self, base_url: str, upstream_model: str) -> str | None:
        return None  # this kind cannot serve embeddings

    def prepare_chat_body(self, body: dict, upstream_model: str, stream: bool) -> dict:
        """Last touches on a body already in this adapter's dialect (model name, quirks)."""
        body["model"] = upstream_model
        return body

    # The field of a count_tokens answer that holds the count (Anthropic's name by default).
    count_tokens_field = "input_tokens"

    def count_tokens_url(self, base_url: str, upstream_model: str) -> str | None:
        return None  # this kind cannot count tokens: the endpoint estimates

    def count_tokens_body(self, body: dict, upstream_model: str) -> dict:
        """A client's count_tokens body (in this adapter's dialect) for this upstream."""
        return body

    # --- building ----------------------------------------------------------------------------

    def build(
        self,
        target: Target,
        key: ApiKey,
        url: str,
        body: bytes,
        extra_headers: dict[str, str] | None = None,
    ) -> UpstreamRequest:
        if not extra_headers:
            # The same dict object per key, so the HTTP client can reuse its encoded form.
            headers = self._headers_by_key.get(key.name)
            if headers is None:
                headers = self._headers_by_key[key.name] = StableHeaders(
                    {**self.static_headers, **self.auth_headers(key)}
                )
            return UpstreamRequest("POST", url, headers, body)
        headers = {**self.static_headers, **extra_headers, **self.auth_headers(key)}
        return UpstreamRequest("POST", url, headers, body)

    def send(
        self, client: Sender, request: UpstreamRequest, timeouts: Timeouts, options: ClientOptions
    ) -> Awaitable[Any]:
        """The upstream's answer (an upstream.UpstreamResponse) to a built request. Not a
        coroutine itself: the dispatcher awaits the client's, one await as before."""
        return client.send(request, timeouts, options)

    def base_for(self, target: Target) -> str:
        return (target.base_url or self.base_url).rstrip("/")
