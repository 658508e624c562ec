"""Azure's base URL forms (see providers/azure.py), apart from the adapter: the config checks
read them too, and must not import the adapters (they import the config)."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_form(base_url: str) -> str:
    """ "classic" | "v1" | "as_is" for a base URL (templates count as "as_is")."""
    path = urlsplit(base_url.replace(":name", "name")).path.rstrip("/")
    if path in ("", "/openai"):
        return "classic"
    if path.endswith("/openai/v1"):
        return "v1"
    return "as_is"


def needs_api_version(base_url: str) -> bool:
    return url_form(base_url) != "v1"
