"""The minimal proxy on the gateway's own HTTP layer: HttpServer + HttpClient (httptools, uvloop).

Single process, one event loop thread. Streams are relayed the way the gateway relays them:
`ClientResponse.pipe` hands each chunk from the upstream connection's data callback straight
to `StreamResponse.send_now` (no task wake-up per chunk). Uses only `apex_ai_proxy.http`'s
public names. Run through the benchmark (`python -m bench.run --scenarios baselines`) or:

    python -m bench.baselines.own_stack --config bench-config.yaml --port 8080
"""

from __future__ import annotations

import asyncio
import signal

import uvloop

from apex_ai_proxy.http import (
    HttpClient,
    HttpServer,
    PathRouter,
    Request,
    Response,
    StableHeaders,
    StreamResponse,
    Timeouts,
)
from bench.baselines.common import (
    READY_BODY,
    Rejected,
    Route,
    load_routes,
    parse_args,
    rewrite,
)

TIMEOUTS = Timeouts(total=600, connect=10, read=600)


def build_server(routes: dict[str, Route], client: HttpClient) -> HttpServer:
    # StableHeaders: the client encodes each route's headers once, as the gateway does per key.
    routes = {
        alias: Route(route.url, route.model, StableHeaders(route.headers))
        for alias, route in routes.items()
    }

    async def chat(request: Request) -> Response | StreamResponse:
        try:
            route, body, stream = rewrite(request.body, routes)
        except Rejected as rejected:
            return Response(rejected.status, rejected.body, content_type="application/json")
        upstream = await client.send("POST", route.url, route.headers, body, TIMEOUTS)
        if not stream:
            answer = await upstream.read()
            return Response(upstream.status, answer, content_type="application/json")
        response = StreamResponse(upstream.status)
        response.content_type = "text/event-stream"
        await response.prepare(request)
        await upstream.pipe(response.send_now)
        return response

    async def ready(request: Request) -> Response:
        return Response(200, READY_BODY, content_type="application/json")

    async def not_found(request: Request) -> Response:
        return Response(404, b"", content_type="application/json")

    async def not_allowed(request: Request, methods: list[str]) -> Response:
        return Response(405, b"", {"allow": ", ".join(methods)})

    router = PathRouter()
    router.add("/v1/chat/completions", {"POST": chat})
    router.add("/readyz", {"GET": ready})
    return HttpServer(
        router, max_body=4 * 1024 * 1024, not_found=not_found, method_not_allowed=not_allowed
    )


async def serve(config: str, host: str, port: int) -> None:
    routes = load_routes(config)
    client = HttpClient()
    server = build_server(routes, client)
    await server.listen(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.shutdown(1.0)
    await client.close()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    uvloop.run(serve(args.config, args.host, args.port))


if __name__ == "__main__":
    main()
