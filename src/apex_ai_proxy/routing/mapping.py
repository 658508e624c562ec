"""Model mapping: rename the requested model before routing.

Two sources, applied in this order, each at most once:

1. the configured `model_mapping: {from: to}`;
2. the request header `X-APEX-AI-PROXY-MAPPING: from1#to1,from2#to2`, applied to the result of 1.

A model may carry an explicit provider, `name#provider`; the provider is what follows the last
`#`. Mapping compares only the bare name and keeps the client's `#provider` suffix:
with `gpt-4o#gpt-4.1`, `gpt-4o#openai` becomes `gpt-4.1#openai`.
"""

from __future__ import annotations

from collections.abc import Mapping

MAPPING_HEADER = "X-APEX-AI-PROXY-MAPPING"


class MappingError(ValueError):
    """The mapping header is malformed; the message names the offending entry."""


def parse_mapping(header_value: str | None) -> dict[str, str]:
    """`"a#b, c#d"` → `{"a": "b", "c": "d"}`; empty or absent → `{}`."""
    if header_value is None:
        return {}
    value = header_value.strip()
    if not value:
        return {}
    mapping: dict[str, str] = {}
    for raw in value.split(","):
        entry = raw.strip()
        source, sep, dest = entry.partition("#")
        source, dest = source.strip(), dest.strip()
        if not sep or "#" in dest or not source or not dest:
            raise MappingError(
                f"{MAPPING_HEADER}: malformed entry {entry!r}; expected 'from#to' with exactly "
                "one '#' and non-empty names, entries separated by ','"
            )
        previous = mapping.setdefault(source, dest)
        if previous != dest:
            raise MappingError(
                f"{MAPPING_HEADER}: {source!r} is mapped twice ({previous!r} and {dest!r})"
            )
    return mapping


def map_model(model: str, config_map: Mapping[str, str], header_map: Mapping[str, str]) -> str:
    """The model after the configured mapping, then the header's (each compares bare names).

    A configured target may name a provider (`to#provider`); it is used only when the client
    did not name one itself.
    """
    if not config_map and not header_map:
        return model
    bare, sep, provider = model.rpartition("#")
    if not sep:
        bare = provider
    name = bare
    target = config_map.get(name)
    if target is not None:
        name, target_sep, target_provider = target.rpartition("#")
        if not target_sep:
            name = target_provider
        elif not sep:
            sep, provider = target_sep, target_provider
    name = header_map.get(name, name)
    if target is None and name == bare:
        return model  # nothing matched: no new string
    return f"{name}{sep}{provider}" if sep else name
