"""The admin API: what operators (and the console) read and change, under /admin/.

Every route takes an admin token (`admin_tokens`, auth.AdminAuth): without admin tokens the
API does not exist (404), a client token is refused (403). Answers are JSON; errors are in
OpenAI's shape like the gateway's other non-dialect routes. One module per subject:

    config.py    GET /admin/config   the running config, every secret masked
    keys.py      /admin/keys …       virtual keys: create, list, show, change, revoke, spend
    reload.py    POST /admin/reload  apply the config file again
"""

from __future__ import annotations

from apex_ai_proxy.lifecycle import Handle
from apex_ai_proxy.services import Services

from . import config, keys, reload

AdminRoute = tuple[str, str, Handle]  # method, path, handler


def routes(services: Services) -> list[AdminRoute]:
    return [
        ("GET", "/admin/config", config.show(services)),
        ("POST", "/admin/reload", reload.apply(services)),
        *keys.routes(services),
    ]
