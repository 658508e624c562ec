"""One request per scenario before the load: is the gateway's answer right, not just a 200?

wrk counts any 2xx as success; a gateway that answered 200 with an empty stream would look fast.
"""

from __future__ import annotations

import http.client
import json

from bench import fixtures
from bench.upstream import post


def _sse_data(body: bytes) -> list[str]:
    return [line[5:].strip() for line in body.decode().splitlines() if line.startswith("data:")]


def _openai_text(body: bytes) -> tuple[str, bool]:
    text, done = [], False
    for data in _sse_data(body):
        if data == "[DONE]":
            done = True
            continue
        for choice in json.loads(data).get("choices", []):
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text), done


def _anthropic_text(body: bytes) -> tuple[str, bool]:
    text, stopped = [], False
    for data in _sse_data(body):
        event = json.loads(data)
        if (
            event.get("type") == "content_block_delta"
            and event["delta"].get("type") == "text_delta"
        ):
            text.append(event["delta"]["text"])
        stopped = stopped or event.get("type") == "message_stop"
    return "".join(text), stopped


def check(base: str, scenario) -> str:
    """ "ok", or what is wrong with the gateway's answer to one request of `scenario`."""
    try:
        status, ctype, body = post(base + scenario.gateway_path, scenario.body, scenario.headers)
    except http.client.IncompleteRead as exc:
        return f"answer cut short after {len(exc.partial)} bytes: {exc.partial[-200:]!r}"
    except (OSError, http.client.HTTPException) as exc:
        return f"request failed: {type(exc).__name__}: {exc}"
    if status != 200:
        return f"status {status}: {body[:300]!r}"
    try:
        if not scenario.stream:
            answer = json.loads(body)
            text = answer["choices"][0]["message"]["content"]
            if "usage" not in answer:
                return "no usage in the answer"
        elif scenario.dialect == "anthropic":
            text, finished = _anthropic_text(body)
            if not finished:
                return "stream without message_stop"
        else:
            text, finished = _openai_text(body)
            if not finished:
                return "stream without [DONE]"
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"malformed answer ({type(exc).__name__}: {exc}): {body[:300]!r}"
    if text != fixtures.ANSWER:
        return f"answer text differs: {text[:100]!r}"
    return "ok"
