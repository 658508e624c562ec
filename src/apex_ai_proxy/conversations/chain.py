"""previous_response_id: the stored history put in front of a request, or the upstream that
still holds it.

A request naming `previous_response_id` gets the stored items of the whole chain put in front of
its own input (instructions do not carry over), and is sent to any upstream. When the previous
response came from a native Responses upstream that kept it (`store` not false), the request is
first sent to that same provider and key with the upstream's own previous_response_id, so the
upstream's state (and its prompt cache) is used; if that upstream cannot answer, the expanded
conversation goes to the route as usual.
"""

from __future__ import annotations

from dataclasses import replace

from apex_ai_proxy.http import Response, StreamResponse
from apex_ai_proxy.providers.base import ApiKey, Target
from apex_ai_proxy.routing import Route
from apex_ai_proxy.state.responses_store import StoredResponse

from .store import ConversationStore


def pinned_route(store: ConversationStore, route: Route, last: StoredResponse) -> Route | None:
    """The route narrowed to the upstream (provider and key) holding `last`'s state."""
    if not last.upstream_response_id or not store.native(last.provider):
        return None
    for target in route.targets:
        if target.provider != last.provider:
            continue
        keys = [k for k in target.keys if k.name == last.key_name]
        if keys:
            return Route(route.name, route.strategy, [_with_keys(target, keys)])
    return None


def lost_state(response: StreamResponse) -> bool:
    """The upstream answered that it no longer has the previous response (expired, other org)."""
    if response.status not in (400, 404) or not isinstance(response, Response):
        return False
    body = response.body
    return isinstance(body, bytes) and b"previous_response" in body


def history(chain: list[StoredResponse]) -> list[dict]:
    items: list[dict] = []
    for record in chain:
        items.extend(record.input_items)
        items.extend(record.output_items)
    return items


def _with_keys(target: Target, keys: list[ApiKey]) -> Target:
    return replace(target, keys=keys)
