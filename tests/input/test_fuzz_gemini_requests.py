"""Property-based: a hostile Gemini generateContent / countTokens request never gives a 500.

A valid body in Google's shape (camelCase and snake_case fields, tools with `parameters` and
`parametersJsonSchema`, a call and its response, thought parts, generationConfig with
thinkingConfig and a JSON schema) gets one to three JSON paths set to another value or removed,
and goes through the real gateway to an upstream of each dialect. The answer must not be a 500,
and an error must be Google's shape: `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import orjson
import pytest
from fuzz_support import mutated
from gateway_support import MODELS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEED = {
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "plan", "thought": True, "thoughtSignature": "c2lnLTE="},
                {
                    "functionCall": {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "c1",
                        "name": "get_weather",
                        "response": {"result": "sunny"},
                    }
                },
                {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                },
                {"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}},
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}},
    "generationConfig": {
        "temperature": 0.5,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    },
}
METHODS = (
    "generateContent",
    "streamGenerateContent?alt=sse",
    "streamGenerateContent",
    "countTokens",
)


def assert_google_error(status: int, raw: bytes) -> None:
    error = orjson.loads(raw).get("error")
    assert isinstance(error, dict), raw[:300]
    assert error["code"] == status and isinstance(error["status"], str), raw[:300]
    assert isinstance(error["message"], str) and error["message"].strip(), raw[:300]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("upstream", sorted(MODELS))
@FUZZ
@given(data=st.data())
async def test_hostile_gemini_requests_never_give_a_500(fuzz_gateway, upstream, method, data):
    body = data.draw(mutated(SEED), label="body")
    path = f"/v1beta/models/{MODELS[upstream]}:{method}"
    status, raw, _ = await fuzz_gateway.post(path, json.dumps(body).encode())
    assert status != 500, (body, raw[:500])
    if status >= 400:
        assert_google_error(status, raw)


@settings(FUZZ, max_examples=40)
@given(model=st.text(min_size=1, max_size=40), method=st.sampled_from(METHODS))
async def test_odd_model_names_in_gemini_paths_never_give_a_500(fuzz_gateway, model, method):
    path = f"/v1beta/models/{quote(model, safe='')}:{method}"
    status, raw, _ = await fuzz_gateway.post(path, json.dumps(SEED).encode())
    assert status != 500, (model, raw[:500])
    if status >= 400:
        assert_google_error(status, raw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("upstream", sorted(MODELS))
async def test_the_gemini_seed_itself_is_answered(fuzz_gateway, upstream, method):
    """The fuzzed seed is a valid request on every route (else the fuzzing tests only the 400s)."""
    path = f"/v1beta/models/{MODELS[upstream]}:{method}"
    status, raw, _ = await fuzz_gateway.post(path, json.dumps(SEED).encode())
    assert status == 200, raw[:500]
