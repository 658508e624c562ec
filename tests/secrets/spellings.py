r"""Every way an encoder may spell a secret, and a check that finds it in any of them.

`spellings(secret)` gives the escapings upstreams were seen to use (and their neighbours): PHP's
`\/`, `\u002d` for `-` in either case of hex, every character `\u`-escaped, URL `%2D`, every
character percent-encoded. `leaked(secret, data)` is written independently of the gateway's
redactor: it undoes JSON string escapes, `\\` and percent-encoding, repeatedly (an escaped
escape is undone in the next round), and looks for the literal secret in every round.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_UNICODE = re.compile(r"\\u([0-9a-fA-F]{4})")


def spellings(secret: str) -> dict[str, str]:
    """name → the secret as that encoder writes it inside a JSON string."""
    return {
        "literal": secret,
        "php_slash": secret.replace("/", "\\/"),
        "dash_lower_hex": secret.replace("-", "\\u002d"),
        "dash_upper_hex": secret.replace("-", "\\u002D"),
        "every_char_lower": "".join(f"\\u{ord(c):04x}" for c in secret),
        "every_char_upper": "".join(f"\\u{ord(c):04X}" for c in secret),
        "mixed": "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(secret)),
        "url_dash": secret.replace("-", "%2D").replace("/", "%2f"),
        "url_every_char": "".join(f"%{ord(c):02X}" for c in secret),
    }


def _unescape_once(text: str) -> str:
    text = text.replace("\\\\", "\\")  # an escaped escape first: `\\u002d` is `\u002d`
    text = _UNICODE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return unquote(text.replace("\\/", "/"))


def leaked(secret: str, data: bytes | str) -> bool:
    """True when `secret` is in `data` in any spelling above (or one escaped again)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for _ in range(4):
        if secret in text:
            return True
        unescaped = _unescape_once(text)
        if unescaped == text:
            return False
        text = unescaped
    return secret in text
