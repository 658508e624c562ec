"""The admin API: what operators (and the console at /ui/) read and change, under /admin/.

Every route takes an admin token (`admin_tokens`, auth.AdminAuth), as `Authorization: Bearer`
or the console's session cookie (changes through the cookie also need its CSRF token): without
admin tokens the API does not exist (404), a client token is refused (403). Answers are JSON;
errors are in OpenAI's shape like the gateway's other non-dialect routes. One module per subject:

    config.py    GET /admin/config                 the running config, every secret masked
    session.py   POST|GET|DELETE /admin/session    the console's login (the token in JSON)
    overview.py  GET /admin/overview?range=        traffic series and totals
    requests.py  GET /admin/requests[/{id}]        the request log; one request's story
    pool.py      GET /admin/pool                   every provider key: state, traffic, quota
    keys.py      /admin/keys …                     virtual keys: create, list, show, change, revoke, spend
    reload.py    POST /admin/reload                re-read the config file, apply it or say why not

The console polls these GETs, so they are not recorded as requests (they would swamp the
traffic they show); changes (POST, PATCH, DELETE) are.
"""

from __future__ import annotations

from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

from . import config, keys, overview, pool, reload, requests, session

AdminRoute = tuple[str, str, Handle]  # method, path, handler
LOGIN = ("POST", "/admin/session")  # the one route that takes its token in the body


def routes(services: Services) -> list[AdminRoute]:
    return [
        ("GET", "/admin/config", config.show(services)),
        ("POST", "/admin/reload", reload.apply(services)),
        (*LOGIN, session.login(services)),
        ("GET", "/admin/session", session.whoami(services)),
        ("DELETE", "/admin/session", session.logout(services)),
        ("GET", "/admin/overview", overview.show(services)),
        ("GET", "/admin/requests", requests.listing(services)),
        ("GET", "/admin/requests/{request_id}", requests.story(services)),
        ("GET", "/admin/pool", pool.show(services)),
        *keys.routes(services),
    ]
