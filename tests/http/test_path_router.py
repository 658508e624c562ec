"""PathRouter: exact paths first, then `{name}` (one segment) and `{name:path}` (the rest)."""

from __future__ import annotations

from apex_ai_proxy.http import PathRouter


async def _exact(request):  # handlers are never called here
    return None


async def _model(request):
    return None


def router() -> PathRouter:
    r = PathRouter()
    r.add("/v1/models", {"GET": _exact})
    r.add("/v1/responses/{id}", {"GET": _exact})
    r.add("/v1beta/models/{target:path}", {"POST": _model})
    return r


def test_exact_path_wins_and_has_no_params():
    assert router().match("/v1/models") == ({"GET": _exact}, {})


def test_segment_param_stops_at_a_slash():
    r = router()
    assert r.match("/v1/responses/resp_1") == ({"GET": _exact}, {"id": "resp_1"})
    assert r.match("/v1/responses/a/b") == (None, {})


def test_path_param_takes_slashes_and_colons():
    methods, params = router().match("/v1beta/models/org/llama3:8b:generateContent")
    assert methods == {"POST": _model}
    assert params == {"target": "org/llama3:8b:generateContent"}


def test_path_param_needs_at_least_one_character():
    assert router().match("/v1beta/models/") == (None, {})
