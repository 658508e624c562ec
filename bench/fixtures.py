"""Bodies of the benchmark: what the load generators send and what the fake upstream answers.

They are realistic in size and shape (a system prompt, a user turn, usage in every answer) so the
gateway does the work it does in production: parse the request, rewrite the model, relay the
answer and read its usage.
"""

from __future__ import annotations

import orjson

GATEWAY_TOKEN = "sk-bench-client"
# chat_c50_vkey: a virtual key the bench puts in the key store before the gateway starts
VIRTUAL_KEY = "sk-apex-bench-" + "0" * 40
UPSTREAM_KEY = "sk-bench"
UPSTREAM_MODEL = "upstream-model"

SYSTEM_PROMPT = "You are a concise assistant. Answer in plain English, in at most three sentences."
USER_PROMPT = (
    "Explain in a few sentences why connection pooling matters for an HTTP gateway that relays "
    "requests to a remote language model API, and what goes wrong without it."
)
ANSWER_TOKENS = [
    "Connection",
    " pooling",
    " keeps",
    " TCP and TLS",
    " sessions open,",
    " so each request",
    " skips the handshake",
    " round trips.",
    " Without it, latency",
    " and CPU cost grow with every call.",
]
ANSWER = "".join(ANSWER_TOKENS)
USAGE = {
    "prompt_tokens": 48,
    "completion_tokens": 31,
    "total_tokens": 79,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
CREATED = 1732240000


def openai_request(model: str, stream: bool) -> bytes:
    body: dict = {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_PROMPT},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def anthropic_request(model: str, stream: bool) -> bytes:
    body: dict = {
        "model": model,
        "max_tokens": 256,
        "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": USER_PROMPT}],
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def chat_completion() -> bytes:
    """A full, non-streamed OpenAI chat.completion."""
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": UPSTREAM_MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> bytes:
    choices = (
        []
        if usage
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    event = {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "system_fingerprint": "fp_bench",
        "choices": choices,
    }
    if usage:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


def chat_completion_stream() -> bytes:
    """A whole OpenAI SSE stream: role, ten content deltas, finish, usage, [DONE]."""
    parts = [_chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": token}) for token in ANSWER_TOKENS]
    parts.append(_chunk({}, finish_reason="stop"))
    parts.append(_chunk({}, usage=USAGE))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def slow_token_event(sent_ns: int) -> bytes:
    """One streamed token whose text is the monotonic time it was sent (for one-way delay)."""
    return (
        b'data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1732240000,'
        b'"model":"upstream-model","choices":[{"index":0,"delta":{"content":"%d "},'
        b'"logprobs":null,"finish_reason":null}]}\n\n' % sent_ns
    )


def slow_stream_tail() -> bytes:
    return _chunk({}, finish_reason="stop") + _chunk({}, usage=USAGE) + b"data: [DONE]\n\n"
