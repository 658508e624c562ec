"""The smallest useful gateway built on aiohttp's server and client, for comparison only.

It routes the bench config's models to their upstreams (OpenAI dialect only, no failover, no
records) so that what remains is the cost of the HTTP stack. Run it through the benchmark:

    BENCH_GATEWAY_CMD="{python} -m bench.baselines.aiohttp_proxy --config {config} --port {port}" \\
        .venv/bin/python -m bench.run --scenarios chat_c50,stream_c50

This is how the gateway's own HTTP layer (src/apex_ai_proxy/http/) was chosen.
"""

from __future__ import annotations

import argparse
import json

import aiohttp
import orjson
import uvloop
from aiohttp import web


def load_routes(path: str) -> dict[str, tuple[str, str, str]]:
    with open(path, encoding="utf-8") as file:
        text = file.read()
    config = json.loads(text[text.index("{") :])  # the bench writes JSON after a comment line
    routes = {}
    for alias, model in config["models"].items():
        entry = model["providers"][0]
        provider = config["providers"][entry["provider"]]
        routes[alias] = (
            provider["base_url"] + "/chat/completions",
            provider["api_keys"][0],
            entry["model"],
        )
    return routes


def build_app(routes: dict[str, tuple[str, str, str]]) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        url, key, upstream_model = routes[body["model"]]
        body["model"] = upstream_model
        headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
        session: aiohttp.ClientSession = request.app["session"]
        async with session.post(url, data=orjson.dumps(body), headers=headers) as upstream:
            if not body.get("stream"):
                return web.Response(body=await upstream.read(), content_type="application/json")
            response = web.StreamResponse()
            response.content_type = "text/event-stream"
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/readyz", ready)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(
        build_app(load_routes(args.config)),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
