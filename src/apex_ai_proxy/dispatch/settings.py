"""Per-provider settings of an upstream call: timeouts, and the TLS, proxy and pool options."""

from __future__ import annotations

from apex_ai_proxy.http import ClientOptions, Timeouts
from apex_ai_proxy.providers.base import Target


class ProviderSettings:
    """Built once per adapter: the HTTP client keys its pools by the options object's identity,
    so every call to one provider must hand it the same object."""

    __slots__ = ("_settings",)

    def __init__(self) -> None:
        self._settings: dict[int, tuple[Timeouts, ClientOptions]] = {}

    def for_target(self, target: Target) -> tuple[Timeouts, ClientOptions]:
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
