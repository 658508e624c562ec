"""GET /ui/: the operations console, static files shipped in the package (no build step).

The files hold no data: the pages read everything through the admin API (/admin/…) with the
session cookie, like any script could with a Bearer token. They are served only when the admin
API is on (admin_tokens), read into memory once at start-up, and only the files listed here
exist (no path from the request ever reaches the file system).

    static/index.html, app.js, pages.js, pool.js (the Key pool page), style.css   the console
    static/vendor/                         uPlot (charts), its licence and version: VERSIONS
"""

from __future__ import annotations

from importlib import resources

from apex_ai_proxy.context import RequestContext
from apex_ai_proxy.errors import NotFound
from apex_ai_proxy.http import Request, Response
from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

PATH = "/ui"
PATHS = ("/ui", "/ui/", "/ui/{file:path}")
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "pages.js": "text/javascript; charset=utf-8",
    "pool.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/uPlot.LICENSE": "text/plain; charset=utf-8",
    "vendor/VERSIONS": "text/plain; charset=utf-8",
}
# The pages load nothing from elsewhere, run no inline script, and are never framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def _load() -> dict[str, bytes]:
    static = resources.files(__name__).joinpath("static")
    return {name: static.joinpath(name).read_bytes() for name in FILES}


def handler(services: Services) -> Handle:
    files = _load()

    async def handle(request: Request, ctx: RequestContext) -> Response:
        if not services.admin.enabled:
            raise NotFound(
                "The console is off: configure admin_tokens to turn it on.", code="admin_off"
            )
        if request.path == PATH:  # /ui → /ui/, so the pages' relative links resolve
            return Response(308, b"", headers={"location": PATH + "/"})
        name = request.match_info.get("file") or "index.html"
        body = files.get(name)
        if body is None:
            raise NotFound(f"The console has no file {name!r}.", code="unknown_route")
        resp = Response(200, body, headers=dict(SECURITY_HEADERS), content_type=FILES[name])
        resp.headers["x-request-id"] = ctx.request_id
        return resp

    return handle
