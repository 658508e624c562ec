"""Resolve route: a model string becomes the candidate targets for a request.

Sources, in order: `model#provider` (explicit provider, or a Cloudflare provider slug that
providers/slugs.py maps to one), configured model aliases, then the model lists of providers
that declare one. The route table is built once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from apex_ai_proxy.config import Config
from apex_ai_proxy.errors import NotFound
from apex_ai_proxy.providers import build_adapter
from apex_ai_proxy.providers.base import ProviderAdapter, Target
from apex_ai_proxy.providers.slugs import resolve_slug


@dataclass(slots=True)
class Route:
    name: str  # the alias (or bare model) the client asked for, without #provider
    strategy: str
    targets: list[Target]


class Router:
    def __init__(self, config: Config) -> None:
        self.providers = config.providers
        self.adapters: dict[str, ProviderAdapter] = {
            name: build_adapter(name, provider) for name, provider in config.providers.items()
        }
        self.routes: dict[str, Route] = {}
        for alias, model in config.models.items():
            targets = [self._target(alias, i, entry) for i, entry in enumerate(model.providers)]
            self.routes[alias] = Route(alias, model.strategy, targets)
        # Bare model names that providers declare they serve.
        for name, provider in config.providers.items():
            adapter = self.adapters[name]
            for model_name in provider.models:
                route = self.routes.get(model_name)
                keys = adapter.keys_from(provider.keys())
                target = Target(
                    name, adapter, model_name, keys, provider.weight, price=provider.price
                )
                if route is None:
                    self.routes[model_name] = Route(model_name, "weighted", [target])
                elif all(t.provider != name for t in route.targets):
                    route.targets.append(target)
        self._pinned: dict[str, Route] = {}

    def _target(self, alias: str, index: int, entry) -> Target:
        adapter = self.adapters[entry.provider]
        own_keys = entry.keys()
        if own_keys is not None:
            keys = adapter.keys_from(own_keys, prefix=f"{entry.provider}@{alias}[{index}]")
        else:
            keys = adapter.keys_from(adapter.config.keys())
        price = entry.price or adapter.config.price  # the entry's price wins over the provider's
        return Target(
            entry.provider, adapter, entry.model or alias, keys, entry.weight, entry.base_url, price
        )

    def model_names(self) -> list[str]:
        return list(self.routes)

    def resolve(self, model: str) -> Route:
        route = self.routes.get(model)
        if route is not None:
            return route
        if "#" in model:
            return self._resolve_pinned(model)
        known = ", ".join(self.routes) or "none"
        raise NotFound(
            f"The model '{model}' does not exist on this gateway. Known models: {known}.",
            code="model_not_found",
            param="model",
        )

    def _resolve_pinned(self, model: str) -> Route:
        route = self._pinned.get(model)
        if route is not None:
            return route
        name, _, provider = model.rpartition("#")
        upstream = name
        if provider not in self.adapters and name:  # a Cloudflare slug (providers/slugs.py)?
            provider, upstream = resolve_slug(provider, name, self.providers) or (provider, name)
        adapter = self.adapters.get(provider)
        if adapter is None or not name:
            known = ", ".join(self.adapters) or "none"
            raise NotFound(
                f"Unknown provider '{provider}' in model '{model}'. Known providers: {known}.",
                code="model_not_found",
                param="model",
            )
        alias = self.routes.get(name)
        targets = [t for t in alias.targets if t.provider == provider] if alias else []
        if not targets:
            keys = adapter.keys_from(adapter.config.keys())
            targets = [Target(provider, adapter, upstream, keys, 1.0, price=adapter.config.price)]
        route = Route(name, alias.strategy if alias else "weighted", targets)
        if len(self._pinned) < 10_000:  # clients choose these strings: bound the cache
            self._pinned[model] = route
        return route
