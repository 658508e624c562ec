"""Translation planning: which translation an attempt needs, and the body it sends upstream."""

from __future__ import annotations

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.dialects.base import dumps
from apex_ai_proxy.dispatch.operation import Operation
from apex_ai_proxy.providers.base import Target
from apex_ai_proxy.translate import Translation


def translation_for(
    op: Operation,
    target: Target,
    body: dict,
    ctx: RequestContext,
    cache: dict[str, Translation | None],
) -> Translation | None:
    """None when the target speaks the client's dialect (or for embeddings); planned once per
    upstream dialect of one request, so failing over to the same dialect reuses it."""
    upstream_dialect = target.adapter.dialect if op.kind == "chat" else "openai_chat"
    if upstream_dialect == op.client_dialect or op.kind != "chat":
        return None
    if upstream_dialect not in cache:
        cache[upstream_dialect] = Translation(op.client_dialect, upstream_dialect, body, ctx)
    return cache[upstream_dialect]


def upstream_body(
    op: Operation,
    target: Target,
    body: dict,
    stream: bool,
    translation: Translation | None,
) -> bytes:
    adapter = target.adapter
    if translation is not None:
        data = translation.request(target.upstream_model, stream)
    else:
        data = dict(body)
        if op.kind == "embeddings":
            data["model"] = target.upstream_model
            return dumps(data)
    return dumps(adapter.prepare_chat_body(data, target.upstream_model, stream))
