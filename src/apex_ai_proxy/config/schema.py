"""The config file's schema: one pydantic model per section the gateway itself owns (the
sections other parts own are imported from them), and what a whole config says about itself
(its warnings and its secrets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apex_ai_proxy.health.config import (
    DEFAULT_ENDPOINT_FAULTS,
    DEFAULT_KEY_FAULTS,
    FaultWindowConfig,
    HealthConfig,
)
from apex_ai_proxy.keypool.config import KeyEntry, Limits, StateConfig
from apex_ai_proxy.passthrough.config import PassthroughConfig
from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.telemetry.config import HttpSinkConfig, RecordsConfig
from apex_ai_proxy.virtualkeys.config import VirtualKeysConfig

PROVIDER_KINDS = ("openai", "azure", "anthropic", "gemini", "echo", "responses", "cloudflare")
STRATEGIES = ("weighted", "round-robin", "least-busy", "latency")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every issue with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def report(self, where: str) -> list[str]:
        """The lines `check` prints (and a refused reload logs): a heading, then each problem."""
        heading = f"apex-ai-proxy: the configuration ({where}) has {len(self.problems)} problem(s):"
        return [heading, *(f"  {problem}" for problem in self.problems)]


class _Strict(BaseModel):
    # allow_inf_nan=False: `timeout: 1e400` is inf, a timeout (or grace) that never ends.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class RetryConfig(_Strict):
    max_attempts: int = Field(default=4, ge=1, le=50)
    # Statuses that fail over to the next candidate (plus connection errors and timeouts).
    failover_statuses: list[int] = Field(
        default_factory=lambda: [408, 409, 429, 500, 502, 503, 504, 529]
    )
    # Base and cap of the exponential cooldown used when the upstream gives no Retry-After.
    cooldown_base_s: float = Field(default=1.0, gt=0)
    cooldown_max_s: float = Field(default=300.0, gt=0)
    # How long a key that answered 401/403 stays out.
    auth_failure_cooldown_s: float = Field(default=3600.0, gt=0)
    # 5xx, 529, timeouts, connection errors: the provider endpoint's trouble, not the key's
    # quota. An endpoint with too many is tried after the healthy ones; a key with too many of
    # its own is out for a while (health/faults.py).
    endpoint_faults: FaultWindowConfig = DEFAULT_ENDPOINT_FAULTS
    key_faults: FaultWindowConfig = DEFAULT_KEY_FAULTS


class Price(_Strict):
    """USD per million tokens, for the cost estimate in records."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # default: the input price

    def cost(self, usage: Any) -> float:
        cached = usage.cached_tokens
        cached_price = self.input if self.cached_input is None else self.cached_input
        uncached = max(usage.input_tokens - cached, 0)
        return (
            uncached * self.input + cached * cached_price + usage.output_tokens * self.output
        ) / 1_000_000


class ProviderConfig(_Strict):
    kind: Literal["openai", "azure", "anthropic", "gemini", "echo", "responses", "cloudflare"] = (
        "openai"
    )
    base_url: str | None = None
    api_key: str | None = None
    api_keys: list[KeyEntry] = Field(default_factory=list)  # strings or {key, limits}
    api_version: str | None = None  # azure: api-version; anthropic: anthropic-version
    # azure: what replaces `:name` in a base_url template (the Worker's `https://:name.azure.com/…`)
    resource: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    # cloudflare (providers/cloudflare.py): the gateway, its token, and which path to use
    account_id: str | None = None
    gateway_id: str | None = None
    gateway_token: str | None = None  # sent as cf-aig-authorization; a secret
    native: Literal["anthropic"] | None = None
    timeout: float = Field(default=600.0, gt=0)  # whole request, stream included
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)  # longest silence between chunks
    headers: dict[str, str] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list)  # models this provider serves by bare name
    weight: float = Field(default=1.0, ge=0)
    # echo provider: pause between streamed tokens
    token_delay_ms: float = Field(default=0.0, ge=0)
    price: Price | None = None  # default price of this provider's models
    # Upstream connections (see README "Upstream connections").
    ca_file: str | None = None  # the only CA trusted for this provider (default: system store)
    tls_verify: bool = True  # false: certificates unchecked (warned about at start-up)
    proxy: str | None = None  # None: HTTPS_PROXY/HTTP_PROXY/NO_PROXY; "": none; or http://…
    # per origin and worker; streams last minutes, so far above a general client's 100
    max_connections: int = Field(default=1024, ge=1, le=100_000)
    pool_timeout: float = Field(default=10.0, gt=0)  # waiting for a free connection
    idle_timeout: float = Field(default=30.0, gt=0)  # kept-alive connections closed after
    max_response_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # whole (non-stream) bodies
    limits: Limits | None = None  # of each key × model (keypool/config.py)

    @field_validator("proxy")
    @classmethod
    def _proxy_usable(cls, proxy: str | None) -> str | None:
        if proxy:
            from apex_ai_proxy.http.client.connect import parse_proxy

            parse_proxy(proxy)  # raises ValueError with a message that names no credential
        return proxy

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, ca_file: str | None) -> str | None:
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"ca_file {ca_file!r} is not a readable file")
        return ca_file

    def keys(self) -> list[str]:
        """The configured keys; empty ones (an unset `${VAR:-}`) are left out."""
        return [key for key, _ in self.keys_with_limits()]

    def keys_with_limits(self) -> list[tuple[str, Limits | None]]:
        """keys() each with its own `limits:` (None: the key has none of its own)."""
        own = [(self.api_key, None)] if self.api_key else []
        found = own + [(entry.key, entry.limits) for entry in self.api_keys]
        return [(key, limits) for key, limits in found if key.strip()]


class ModelEntry(_Strict):
    provider: str
    model: str | None = None  # upstream model name; defaults to the alias
    weight: float = Field(default=1.0, ge=0)
    base_url: str | None = None
    api_key: str | None = None
    api_keys: list[str] | None = None
    price: Price | None = None
    limits: Limits | None = None  # most specific: over the key's and the provider's

    def keys(self) -> list[str] | None:
        if self.api_key is None and self.api_keys is None:
            return None
        return [
            k
            for k in ([self.api_key] if self.api_key else []) + list(self.api_keys or [])
            if k.strip()
        ]


class ModelConfig(_Strict):
    strategy: Literal["weighted", "round-robin", "least-busy", "latency"] = "weighted"
    providers: list[ModelEntry] = Field(min_length=1)
    # Every key out of quota: wait this long for the first to free up before answering 429.
    queue_timeout_s: float = Field(default=0.0, ge=0, le=600)
    # Session affinity (dispatch/affinity.py): a conversation stays on its key this long; 0: off.
    affinity_ttl_s: float = Field(default=0.0, ge=0, le=86_400)
    affinity_header: str | None = Field(default=None, min_length=1, max_length=100)


class ServerConfig(_Strict):
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    # What one client connection may cost (apex_ai_proxy.http.ServerLimits).
    max_target_bytes: int = Field(default=8 * 1024, gt=0)
    max_header_count: int = Field(default=100, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    max_pipelined: int = Field(default=16, gt=0)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_timeout_s: float = Field(default=60.0, gt=0)
    write_timeout_s: float = Field(default=60.0, gt=0)  # a client reading nothing is cut off


class Config(_Strict):
    gateway_tokens: list[str] = Field(default_factory=list)
    # The admin API and the console (endpoints/admin/); off while empty. Never a client token.
    admin_tokens: list[str] = Field(default_factory=list)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    model_mapping: dict[str, str] = Field(default_factory=dict)
    # Sections owned by other parts of the gateway, each validated by its own model.
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    passthrough: PassthroughConfig = Field(default_factory=PassthroughConfig)
    responses_store: ResponsesStoreConfig | None = None  # None: SQLite file, opened on first use
    health: HealthConfig = Field(default_factory=HealthConfig)
    state: StateConfig | None = None  # None: the key pool follows `health:` (keypool/__init__)
    virtual_keys: VirtualKeysConfig | None = None  # per-consumer keys (virtualkeys/); None: off
    # Where the config came from, for start-up messages.
    source: str = Field(default="", exclude=True)

    @field_validator("gateway_tokens", "admin_tokens")
    @classmethod
    def _tokens_not_empty(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            if not token.strip():
                raise ValueError("token is empty (is its environment variable set?)")
        return tokens

    def warnings(self) -> list[str]:
        """Things that are allowed but probably not meant: shown by `check` and at start-up."""
        found = []
        for name, provider in self.providers.items():
            if provider.kind not in ("echo", "cloudflare") and not provider.keys():
                own = [
                    e
                    for m in self.models.values()
                    for e in m.providers
                    if e.provider == name and e.keys()
                ]
                if not own:
                    found.append(
                        f"providers.{name}: no API key set; its routes are skipped until one is"
                    )
            if not provider.tls_verify:
                found.append(
                    f"providers.{name}: tls_verify is false: TLS CERTIFICATES ARE NOT CHECKED, "
                    "anyone on the network path can read and change this traffic and its keys"
                )
        shared = (self.state or self.health).backend == "redis"
        if self.virtual_keys is not None and not shared:
            found.append(
                "virtual_keys: limits (rpm, tpm, rpd, max_parallel) are counted by this gateway "
                "alone without a Redis state backend (its --workers share them); with replicas "
                "they multiply (set state: {backend: redis})"
            )
        return found

    def secrets(self) -> list[str]:
        """Every credential in the config: redacted wherever it could appear in records."""
        found = [*self.gateway_tokens, *self.admin_tokens]
        for provider in self.providers.values():
            found.extend(provider.keys())
            if provider.proxy and "@" in provider.proxy:  # proxy credentials
                found.append(unquote(urlsplit(provider.proxy).password or ""))
            found.extend(_header_credentials(provider.headers))
            found.append(provider.gateway_token or "")
        if self.virtual_keys is not None and self.virtual_keys.store.backend == "postgres":
            found.append(unquote(urlsplit(self.virtual_keys.store.dsn).password or ""))
        for model in self.models.values():
            for entry in model.providers:
                found.extend(entry.keys() or [])
        for sink in self.records.sinks:  # the http sink's log-service token (aepipe's too)
            if isinstance(sink, HttpSinkConfig) and sink.token is not None:
                found.append(sink.token.get_secret_value())
        return [s for s in found if s]


# A configured header whose name says it carries a credential (cf-aig-authorization,
# Helicone-Auth, Ocp-Apim-Subscription-Key, X-Portkey-Api-Key): its value is as secret as an API
# key. Other headers (anthropic-beta, OpenAI-Organization) are not: redacting a date or an org id
# everywhere it appears would only spoil the records.
_CREDENTIAL_HEADER_NAME = re.compile(r"auth|key|token|secret|password|signature", re.IGNORECASE)


def _header_credentials(headers: dict[str, str]) -> list[str]:
    """The credential values among configured headers, without an auth scheme (`Bearer x` → x:
    the upstream may quote the credential alone)."""
    found = []
    for name, value in headers.items():
        if _CREDENTIAL_HEADER_NAME.search(name):
            scheme, _, credential = value.strip().partition(" ")
            found.append(credential.strip() if credential.strip() else scheme)
    return found
