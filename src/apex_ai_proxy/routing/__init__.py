"""Routing: which upstream targets may answer a request for a model string.

    router.py    model string → a Route (the candidate targets, the strategy); the route table
    mapping.py   model_mapping (config) and the mapping header: the name a client sent → another
    balancer.py  strategies: the order the candidates of a Route are tried in

The package re-exports the router's names (`from apex_ai_proxy.routing import Route, Router`);
mapping and balancer are imported by their module path. The balancer reads key health, so
re-exporting it here would make every importer of `Route` depend on `health/` (and health's
table names `Router` for its types): an import cycle across folders.
"""

from apex_ai_proxy.routing.router import Route, Router

__all__ = ["Route", "Router"]
