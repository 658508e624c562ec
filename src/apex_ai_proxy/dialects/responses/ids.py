"""Ids the gateway makes (`resp_apx…`, `msg_apx…`, …): the `_apx` mark tells them from an
upstream's."""

from __future__ import annotations

import secrets
from typing import Any

GATEWAY_ID_MARK = "_apx"


def gateway_id(prefix: str) -> str:
    """An item or response id made by the gateway: `msg_apx…`, recognisable later."""
    return f"{prefix}{GATEWAY_ID_MARK}{secrets.token_hex(16)}"


def is_gateway_id(value: Any) -> bool:
    return isinstance(value, str) and GATEWAY_ID_MARK in value[:8]
