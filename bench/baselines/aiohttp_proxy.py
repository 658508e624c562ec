"""The smallest useful gateway built on aiohttp's server and client, for comparison only.

It routes the bench config's models to their upstreams (OpenAI dialect only, no failover, no
records) so that what remains is the cost of the HTTP stack. Run it through the benchmark:

    python -m bench.run --scenarios baselines --baselines own_stack,aiohttp_proxy

This is how the gateway's own HTTP layer (src/apex_ai_proxy/http/) was chosen. Not one of the
three stacks of issue 11's rule (bench/stacks.py), but it can run beside them.
"""

from __future__ import annotations

import aiohttp
import uvloop
from aiohttp import web

from bench.baselines.common import Rejected, Route, load_routes, parse_args, rewrite


def build_app(routes: dict[str, Route]) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            route, body, stream = rewrite(await request.read(), routes)
        except Rejected as rejected:
            return web.Response(
                status=rejected.status, body=rejected.body, content_type="application/json"
            )
        session: aiohttp.ClientSession = request.app["session"]
        async with session.post(route.url, data=body, headers=route.headers) as upstream:
            if not stream:
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
    args = parse_args(__doc__.splitlines()[0])
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
