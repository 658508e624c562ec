"""The google-genai SDK aimed at the gateway, and Gemini-shaped tool declarations.

genai_client(gw)        a `google.genai.Client` on the gateway (api key = CLIENT_TOKEN); its
                        async side is `client.aio`
WEATHER_DECLARATION     get_weather as a functionDeclaration with `parameters`
NOW_DECLARATION         a tool without parameters, declared with `parametersJsonSchema`
"""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import types
from translation_support import CLIENT_TOKEN

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
