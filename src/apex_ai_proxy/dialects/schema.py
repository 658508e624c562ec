"""JSON Schema cleaned only as far as a target needs.

OpenAI and Anthropic take tool schemas as the client wrote them. Gemini's `parameters` and
`responseSchema` accept an OpenAPI 3.0 subset and reject the rest with a 400, so
`gemini_schema` rewrites a schema into that subset:

- `$ref` to `#/$defs/…` or `#/definitions/…` is inlined (a recursive reference stops at a
  plain `{"type": "object"}` after a few levels); `$defs`/`definitions` disappear;
- `type: [X, "null"]` becomes `type: X` + `nullable: true`; `const` becomes a one-value `enum`;
  `oneOf` becomes `anyOf`; a single-member `allOf` is merged into its parent;
- `exclusiveMinimum`/`exclusiveMaximum` with a number become `minimum`/`maximum`;
- string `format` other than `enum`/`date-time` is removed; enum values become strings;
- every keyword outside Gemini's Schema fields (`$schema`, `additionalProperties`, `$id`,
  `examples`, `patternProperties`, …) is removed.

Keywords are recognised only where a schema is expected: the keys of `properties` are property
names and are never removed, so a property named `title` or `format` survives.
"""

from __future__ import annotations

from typing import Any

GEMINI_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
GEMINI_STRING_FORMATS = frozenset({"enum", "date-time"})
MAX_REF_DEPTH = 8


def gemini_schema(schema: Any) -> dict:
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):  # a client's schema: anything may be anywhere
            defs.update(schema[key])
    return _clean(schema, defs, 0)


def _resolve(ref: str, defs: dict) -> dict | None:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            target = defs.get(ref[len(prefix) :])
            return target if isinstance(target, dict) else None
    return None


def _clean(schema: Any, defs: dict, depth: int) -> dict:
    if not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        target = _resolve(schema["$ref"], defs) if isinstance(schema["$ref"], str) else None
        if target is None or depth >= MAX_REF_DEPTH:
            return {"type": "object"}
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _clean(merged, defs, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        merged = {**all_of[0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return _clean(merged, defs, depth)

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _clean(sub, defs, depth) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out["items"] = _clean(value, defs, depth)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            options = [_clean(sub, defs, depth) for sub in value]
            out["anyOf"] = out.get("anyOf", []) + options
        elif key == "type":
            _set_type(out, value)
        elif key == "const":
            out["enum"] = [_enum_value(value)]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [_enum_value(v) for v in value]
        elif key == "exclusiveMinimum" and _is_number(value):
            out.setdefault("minimum", value)
        elif key == "exclusiveMaximum" and _is_number(value):
            out.setdefault("maximum", value)
        elif key in GEMINI_KEYWORDS:
            out[key] = value
    _fix_anyof_nulls(out)
    if out.get("type") == "string" and out.get("format") not in GEMINI_STRING_FORMATS:
        out.pop("format", None)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("properties") == {}:
        del out["properties"]  # Gemini rejects an object schema with empty properties
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        names = out["properties"]
        out["required"] = [n for n in out["required"] if isinstance(n, str) and n in names]
    return out


def _set_type(out: dict, value: Any) -> None:
    if isinstance(value, list):
        types = [t for t in value if t != "null"]
        if len(types) < len(value):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        elif types:
            out["anyOf"] = out.get("anyOf", []) + [{"type": t} for t in types]
    elif value == "null":
        out["nullable"] = True
    elif isinstance(value, str):
        out["type"] = value


def _fix_anyof_nulls(out: dict) -> None:
    """`anyOf: [X, {type: null}]` (pydantic's Optional) becomes X + nullable."""
    options = out.get("anyOf")
    if not isinstance(options, list):
        return
    rest = [o for o in options if o != {"nullable": True}]
    if len(rest) < len(options):
        out["nullable"] = True
    if len(rest) == 1:
        del out["anyOf"]
        for key, value in rest[0].items():
            out.setdefault(key, value)
    elif rest:
        out["anyOf"] = rest
    else:
        del out["anyOf"]


def _enum_value(value: Any) -> str:
    return (
        value
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
