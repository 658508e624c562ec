"""The google-genai SDK aimed at the gateway, and Gemini-shaped tool declarations.

genai_client(gw)        a `google.genai.Client` on the gateway (api key = CLIENT_TOKEN); its
                        async side is `client.aio`
WEATHER_DECLARATION     get_weather as a functionDeclaration with `parameters`
NOW_DECLARATION         a tool without parameters, declared with `parametersJsonSchema`
"""

from __future__ import annotations

from typing import Any

import orjson
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import FakeGemini
from fakes.responses_upstream import Call, FakeResponsesUpstream, Reply, Text
from google import genai
from google.genai import types
from translation_support import CLIENT_TOKEN, ScriptedChat, Turn

GEMINI_SIGNATURE = "Z3NpZy0x"  # base64 of "gsig-1"
WEATHER_DECLARATION = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)
NOW_DECLARATION = types.FunctionDeclaration(
    name="now",
    description="The current time",
    parameters_json_schema={"type": "object", "properties": {}},
)


def genai_client(gw: Any, token: str = CLIENT_TOKEN, **options: Any) -> genai.Client:
    options.setdefault("timeout", 10_000)  # milliseconds
    return genai.Client(
        api_key=token, http_options=types.HttpOptions(base_url=gw.base_url, **options)
    )


# --- one face over the four upstream fakes ----------------------------------------------------


class Scripted:
    """An upstream fake of any dialect behind one small interface: queue a text answer or
    tool calls, read back the bodies it received."""

    def __init__(self, kind: str, fake: Any) -> None:
        self.kind = kind  # the provider kind of the gateway config
        self.fake = fake

    def text(self, text: str) -> None:
        if self.kind == "openai":
            self.fake.push_turn(Turn(content=text))
        elif self.kind == "responses":
            self.fake.queue(Reply(Text(text)))
        else:
            self.fake.push_text(text)

    def calls(self, calls: list[tuple[str, dict]]) -> None:
        if self.kind == "openai":
            self.fake.push_turn(
                Turn(
                    tool_calls=[(n, orjson.dumps(a).decode()) for n, a in calls],
                    finish_reason="tool_calls",
                )
            )
        elif self.kind == "responses":
            self.fake.queue(
                Reply(
                    *(
                        Call(n, orjson.dumps(a).decode(), f"call_{i}")
                        for i, (n, a) in enumerate(calls)
                    )
                )
            )
        elif self.kind == "anthropic":
            self.fake.push_tool_calls(calls)
        else:  # Google's signatures are base64 (the SDK rejects anything else)
            self.fake.push_tool_calls(calls, signature=GEMINI_SIGNATURE)

    def bodies(self) -> list[dict]:
        requests = self.fake.requests
        if self.kind == "openai":
            return [r.body for r in requests]
        if self.kind == "responses":
            return [r.body for r in requests]
        return [r.json for r in requests]


async def start_fake(kind: str) -> Scripted:
    if kind == "openai":
        fake: Any = await ScriptedChat("openai").start()
    elif kind == "anthropic":
        fake = await FakeAnthropic().start()
    elif kind == "responses":
        fake = await FakeResponsesUpstream().start()
    else:
        fake = await FakeGemini().start()
    return Scripted(kind, fake)
