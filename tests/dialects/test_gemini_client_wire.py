"""The Gemini routes on the wire: SSE framing, the JSON-array stream, auth, errors in Google's
shape (before and mid-stream), signatures, and the fields translated to other dialects."""

from __future__ import annotations

import base64

import orjson
import pytest
from fakes.openai_upstream import BreakStream, rate_limited
from translation_support import CLIENT_TOKEN, MODEL, Turn, one_model

GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
GOOGLE = {"x-goog-api-key": CLIENT_TOKEN}


async def post(gw, path: str, body, headers=GOOGLE) -> tuple[int, bytes, dict]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with gw.http().post(path, data=data, headers=headers) as resp:
        return resp.status, await resp.read(), {k.lower(): v for k, v in resp.headers.items()}


def google_error(raw: bytes) -> dict:
    error = orjson.loads(raw)["error"]
    assert set(error) == {"code", "message", "status"}
    return error


def sse_events(raw: bytes) -> list[dict]:
    """Every event exactly one `data: <JSON>` line, then a blank line; no `event:` lines."""
    text = raw.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        assert len(lines) == 1 and lines[0].startswith("data: "), block
        events.append(orjson.loads(lines[0][6:]))
    return events


# --- framing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "gemini"])
async def test_gemini_sse_is_one_data_line_per_event_and_ends_with_finish_reason(
    gateway, openai_fake, gemini_fake, kind
):
    fake = openai_fake if kind == "openai" else gemini_fake
    if kind == "openai":
        fake.push_turn(Turn(content="several streamed words"))
    else:
        fake.push_text("several streamed words")
    gw = await gateway(one_model(kind, fake))

    status, raw, headers = await post(gw, STREAM + "?alt=sse", HELLO)

    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw.replace(b"\r\n", b"\n"))  # Google's own streams use CRLF
    text = "".join(
        p.get("text", "") for e in events for p in e["candidates"][0]["content"]["parts"]
    )
    assert text == "several streamed words"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["totalTokenCount"] > 0
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])


@pytest.mark.parametrize("kind", ["openai", "gemini"])
async def test_gemini_stream_without_alt_sse_is_one_json_array(
    gateway, openai_fake, gemini_fake, kind
):
    fake = openai_fake if kind == "openai" else gemini_fake
    if kind == "openai":
        fake.push_turn(Turn(content="an array of chunks"))
    else:
        fake.push_text("an array of chunks")
    gw = await gateway(one_model(kind, fake))

    status, raw, _ = await post(gw, STREAM, HELLO)

    assert status == 200
    chunks = orjson.loads(raw)
    assert isinstance(chunks, list) and len(chunks) > 2
    text = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert text == "an array of chunks"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        ("", {"x-goog-api-key": CLIENT_TOKEN}),
        (f"?key={CLIENT_TOKEN}", {}),
        ("", {"authorization": f"Bearer {CLIENT_TOKEN}"}),
    ],
    ids=["x-goog-api-key", "key-query", "bearer"],
)
async def test_gemini_routes_take_the_token_where_google_clients_send_it(
    gateway, openai_fake, where
):
    query, headers = where
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, _ = await post(gw, GENERATE + query, HELLO, headers)

    assert status == 200, raw
    assert orjson.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]


@pytest.mark.parametrize("headers", [{}, {"x-goog-api-key": "wrong"}], ids=["missing", "wrong"])
async def test_gemini_bad_token_is_a_google_401(gateway, openai_fake, headers):
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, _ = await post(gw, GENERATE, HELLO, headers)

    assert status == 401
    assert google_error(raw)["status"] == "UNAUTHENTICATED"
    assert openai_fake.requests == []


# --- errors in Google's shape ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, status, google_status",
    [
        ("/v1beta/models/no-such-model:generateContent", HELLO, 404, "NOT_FOUND"),
        (GENERATE, b"{not json", 400, "INVALID_ARGUMENT"),
        (GENERATE, {"contents": "hello"}, 400, "INVALID_ARGUMENT"),
        (GENERATE, {"contents": [{"parts": [{"text": 5}]}]}, 400, "INVALID_ARGUMENT"),
        (f"/v1beta/models/{MODEL}:embedContent", HELLO, 404, "NOT_FOUND"),
        ("/v1beta/cachedContents", HELLO, 404, "NOT_FOUND"),
    ],
    ids=["unknown-model", "bad-json", "contents-not-array", "text-not-string", "method", "route"],
)
async def test_gemini_client_errors_are_googles_shape(
    gateway, openai_fake, path, body, status, google_status
):
    gw = await gateway(one_model("openai", openai_fake))

    got, raw, _ = await post(gw, path, body)

    assert got == status
    error = google_error(raw)
    assert (error["code"], error["status"]) == (status, google_status)
    assert openai_fake.requests == []


async def test_gemini_all_rate_limited_is_resource_exhausted(gateway, openai_fake):
    openai_fake.queue(rate_limited(retry_after=30))
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, headers = await post(gw, GENERATE, HELLO)

    assert status == 429 and headers["retry-after"]
    assert google_error(raw)["status"] == "RESOURCE_EXHAUSTED"


async def test_gemini_upstream_own_error_is_relayed_as_google_sent_it(gateway, gemini_fake):
    body = {"error": {"code": 400, "message": "Bad schema", "status": "INVALID_ARGUMENT"}}
    gemini_fake.push_error(400, body)
    gw = await gateway(one_model("gemini", gemini_fake))

    status, raw, _ = await post(gw, GENERATE, HELLO)

    assert (status, orjson.loads(raw)) == (400, body)


async def test_gemini_translated_stream_cut_ends_with_a_google_error_event(gateway, openai_fake):
    openai_fake.queue(BreakStream(after=3))
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, _ = await post(gw, STREAM + "?alt=sse", HELLO)

    assert status == 200
    last = sse_events(raw)[-1]
    assert set(last) == {"error"} and last["error"]["code"] == 502
    assert last["error"]["status"] == "UNAVAILABLE"


async def test_gemini_relayed_stream_cut_ends_with_a_google_error_event(gateway, gemini_fake):
    gemini_fake.push_break("partial answer")
    gw = await gateway(one_model("gemini", gemini_fake))

    status, raw, _ = await post(gw, STREAM + "?alt=sse", HELLO)

    assert status == 200
    last = sse_events(raw.replace(b"\r\n", b"\n"))[-1]
    assert set(last) == {"error"} and last["error"]["code"] == 502


# --- what reaches other dialects -----------------------------------------------------------------

HISTORY_WITH_SKIPPED_SIGNATURE = {
    "contents": [
        {"role": "user", "parts": [{"text": "list files"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {
                        "id": "c1",
                        "name": "run_shell_command",
                        "args": {"command": "ls"},
                    },
                    "thoughtSignature": "skip_thought_signature_validator",
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "c1",
                        "name": "run_shell_command",
                        "response": {"output": "a.txt"},
                    }
                }
            ],
        },
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "run_shell_command",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"command": {"type": "string"}},
                    },
                }
            ]
        }
    ],
}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_skip_thought_signature_validator_never_reaches_other_dialects(
    gateway, openai_fake, anthropic_fake, kind
):
    fake = openai_fake if kind == "openai" else anthropic_fake
    gw = await gateway(one_model(kind, fake))

    status, raw, _ = await post(gw, GENERATE, HISTORY_WITH_SKIPPED_SIGNATURE)

    assert status == 200, raw
    sent = fake.requests[0].body if kind == "openai" else fake.requests[0].json
    text = orjson.dumps(sent).decode()
    assert "skip_thought_signature_validator" not in text
    assert "a.txt" in text and "run_shell_command" in text


async def test_skip_thought_signature_validator_reaches_gemini_as_sent(gateway, gemini_fake):
    gw = await gateway(one_model("gemini", gemini_fake))

    status, _, _ = await post(gw, GENERATE, HISTORY_WITH_SKIPPED_SIGNATURE)

    assert status == 200
    model_turn = gemini_fake.requests[0].json["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


async def test_gemini_generation_config_translates_to_openai(gateway, openai_fake):
    gw = await gateway(one_model("openai", openai_fake))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = {
        **HELLO,
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": schema,
            "maxOutputTokens": 99,
            "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 0},
        },
    }

    status, raw, _ = await post(gw, GENERATE, body)

    assert status == 200, raw
    sent = openai_fake.requests[0].body
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"] == schema["properties"]
    assert sent["stop"] == ["END"]
    assert 99 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))


async def test_gemini_thinking_budget_reaches_anthropic(gateway, anthropic_fake):
    anthropic_fake.push_thinking("let me think", "c2lnLWFudGhyb3BpYw==", text="42")
    gw = await gateway(one_model("anthropic", anthropic_fake))
    body = {
        **HELLO,
        "generationConfig": {
            "maxOutputTokens": 4096,
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        },
    }

    status, raw, _ = await post(gw, GENERATE, body)

    assert status == 200, raw
    assert anthropic_fake.requests[0].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    parts = orjson.loads(raw)["candidates"][0]["content"]["parts"]
    assert parts[0] == {
        "text": "let me think",
        "thought": True,
        "thoughtSignature": "c2lnLWFudGhyb3BpYw==",
    }
    assert parts[1] == {"text": "42"}


async def test_gemini_content_filter_is_a_safety_finish(gateway, openai_fake):
    openai_fake.push_turn(Turn(content="", finish_reason="content_filter"))
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, _ = await post(gw, GENERATE, HELLO)

    assert status == 200
    assert orjson.loads(raw)["candidates"][0]["finishReason"] == "SAFETY"


# --- model routes ------------------------------------------------------------------------------


async def test_v1_models_answers_each_client_in_its_own_shape(gateway, openai_fake):
    gw = await gateway(one_model("openai", openai_fake))
    session = gw.http()

    async with session.get("/v1/models", headers={"x-goog-api-key": CLIENT_TOKEN}) as resp:
        google = await resp.json()
    auth = {"authorization": f"Bearer {CLIENT_TOKEN}"}
    async with session.get("/v1/models", headers=auth) as resp:
        openai = await resp.json()
    async with session.get(f"/v1/models/{MODEL}", headers=auth) as resp:
        one = await resp.json()

    assert [m["name"] for m in google["models"]] == [f"models/{MODEL}"]
    assert [m["id"] for m in openai["data"]] == [MODEL]
    assert one["id"] == MODEL and one["object"] == "model"


async def test_non_base64_signature_travels_wrapped_and_comes_back_as_it_was(
    gateway, anthropic_fake
):
    """Google's SDKs read thoughtSignature as base64 bytes and reject anything else."""
    anthropic_fake.push_thinking("let me think", "sig with spaces & symbols!", text="42")
    gw = await gateway(one_model("anthropic", anthropic_fake))

    _, raw, _ = await post(gw, GENERATE, HELLO)
    thought = orjson.loads(raw)["candidates"][0]["content"]["parts"][0]
    base64.b64decode(thought["thoughtSignature"], validate=True)  # the SDK can read it
    history = {
        "contents": [
            *HELLO["contents"],
            {"role": "model", "parts": [thought, {"text": "42"}]},
            {"role": "user", "parts": [{"text": "and again?"}]},
        ]
    }
    status, raw, _ = await post(gw, GENERATE, history)

    assert status == 200, raw
    blocks = anthropic_fake.requests[1].json["messages"][1]["content"]
    assert blocks[0] == {
        "type": "thinking",
        "thinking": "let me think",
        "signature": "sig with spaces & symbols!",
    }


@pytest.mark.parametrize(
    "key, status", [(CLIENT_TOKEN, 200), ("wrong", 401)], ids=["right-key", "wrong-key"]
)
async def test_gemini_expect_continue_checks_the_google_key_first(
    gateway, openai_fake, key, status
):
    gw = await gateway(one_model("openai", openai_fake))

    async with gw.http().post(
        GENERATE, data=orjson.dumps(HELLO), headers={"x-goog-api-key": key}, expect100=True
    ) as resp:
        raw = await resp.read()

    assert resp.status == status, raw
    if status == 401:
        assert google_error(raw)["status"] == "UNAUTHENTICATED"
        assert openai_fake.requests == []


@pytest.mark.parametrize(
    "path_model, headers",
    [
        ("gemini-2.5-pro", {"x-apex-ai-proxy-mapping": f"gemini-2.5-pro#{MODEL}"}),
        (f"{MODEL}%23up", {}),
        (f"models/{MODEL}", {}),
    ],
    ids=["mapping-header", "pinned-provider", "resource-name"],
)
async def test_the_path_model_is_routed_like_any_model(gateway, openai_fake, path_model, headers):
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, got = await post(
        gw, f"/v1beta/models/{path_model}:generateContent", HELLO, {**GOOGLE, **headers}
    )

    assert status == 200, raw
    assert got["x-apex-provider"] == "up" and got["x-apex-model"] == "up-model"


async def test_gemini_json_array_stream_cut_ends_with_an_error_element(gateway, openai_fake):
    openai_fake.queue(BreakStream(after=3))
    gw = await gateway(one_model("openai", openai_fake))

    status, raw, _ = await post(gw, STREAM, HELLO)

    assert status == 200
    chunks = orjson.loads(raw)  # still one whole JSON array
    assert set(chunks[-1]) == {"error"} and chunks[-1]["error"]["code"] == 502
