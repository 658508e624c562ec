"""What every minimal proxy shares: its command line and the routes read from the bench config.

Each proxy does the same small work and nothing else: read the JSON body, look the model up,
rewrite it to the upstream's model name, POST it with the upstream key, and relay the answer
(whole, or streamed chunk by chunk as it arrives). No auth, failover, records or translation:
what remains is the cost of the HTTP server and client under it. A body that cannot be routed
gets a 400/404 in OpenAI's error shape; an upstream that fails gets each server's own 500 (these
are measuring tools, not gateways).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import orjson

READY_BODY = b'{"status":"ready"}'


def _error(message: str, param: str | None, code: str | None) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return orjson.dumps({"error": error})


class Rejected(Exception):
    """A body the proxy cannot route: answer `status` with the OpenAI-shaped error `body`."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body


NOT_JSON = _error("The body is not a JSON object.", None, None)
UNKNOWN_MODEL = _error("Unknown model.", "model", "model_not_found")


@dataclass(frozen=True, slots=True)
class Route:
    url: str  # the upstream's chat completions URL
    model: str  # the model name the upstream expects
    headers: dict[str, str]  # content-type and the upstream key, built once


def load_routes(path: str) -> dict[str, Route]:
    """Model alias -> its first provider, from the config bench/gateway.py writes."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    config = json.loads(text[text.index("{") :])  # the bench writes JSON after a comment line
    routes = {}
    for alias, model in config["models"].items():
        entry = model["providers"][0]
        provider = config["providers"][entry["provider"]]
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {provider['api_keys'][0]}",
        }
        routes[alias] = Route(provider["base_url"] + "/chat/completions", entry["model"], headers)
    return routes


def parse_args(description: str) -> argparse.Namespace:
    """The gateway's command shape: `--config FILE --port N` (and `--host`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args()


def rewrite(body: bytes, routes: dict[str, Route]) -> tuple[Route, bytes, bool]:
    """(route, the body with the upstream's model, stream?); Rejected when it cannot be routed."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Rejected(400, NOT_JSON) from None
    if not isinstance(data, dict):
        raise Rejected(400, NOT_JSON)
    model = data.get("model")
    route = routes.get(model) if isinstance(model, str) else None
    if route is None:
        raise Rejected(404, UNKNOWN_MODEL)
    data["model"] = route.model
    return route, orjson.dumps(data), data.get("stream") is True
