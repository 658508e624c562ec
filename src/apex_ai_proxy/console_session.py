"""The console's login session: a signed cookie instead of a server-side session table.

The cookie names the admin token it was opened with and is signed with that token (HMAC), so
every worker and replica can check it with nothing shared, and removing the token from
`admin_tokens` ends its sessions. The CSRF token is derived from the cookie the same way:
the console reads it once (GET /admin/session, which a page on another site cannot read) and
sends it as `x-csrf-token` with every change; SameSite=Strict already keeps the cookie off
cross-site requests, the header is the second lock.

    cookie value:  "<admin name>.<expiry epoch s>.<nonce>.<hex HMAC-SHA256(token, fields)>"
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

COOKIE = "apex_console"
CSRF_HEADER = "x-csrf-token"
LIFETIME_S = 12 * 3600
_DOMAIN = b"apex-ai-proxy/console-session\0"


def _mac(secret: bytes, *fields: str) -> str:
    message = _DOMAIN + "\0".join(fields).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def open_session(name: str, secret: bytes, now: float | None = None) -> str:
    """A new cookie value for admin `name`, signed with its token `secret`."""
    expiry = str(int((time.time() if now is None else now) + LIFETIME_S))
    nonce = os.urandom(12).hex()
    return ".".join((name, expiry, nonce, _mac(secret, "session", name, expiry, nonce)))


def session_name(value: str) -> str | None:
    """The admin name a cookie value claims (unverified), or None when it is malformed."""
    parts = value.split(".")
    return parts[0] if len(parts) == 4 and parts[0] else None


def verify_session(value: str, secret: bytes, now: float | None = None) -> bool:
    parts = value.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    name, expiry, nonce, mac = parts
    good = hmac.compare_digest(mac, _mac(secret, "session", name, expiry, nonce))
    return good and int(expiry) > (time.time() if now is None else now)


def csrf_token(value: str, secret: bytes) -> str:
    """The CSRF token that goes with the session cookie `value`."""
    return _mac(secret, "csrf", value)[:32]


def cookie_from(header: str | None) -> str | None:
    """Our cookie's value from a Cookie header, or None."""
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE and value:
            return value
    return None


def set_cookie(value: str, secure: bool) -> str:
    flags = f"; Path=/; Max-Age={LIFETIME_S}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"


def clear_cookie(secure: bool) -> str:
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"
