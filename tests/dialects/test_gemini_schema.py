"""JSON Schema cleaning for Gemini: only as far as Gemini needs, never touching property names."""

from __future__ import annotations

from apex_ai_proxy.dialects.schema import gemini_schema


def test_gemini_schema_removes_rejected_keywords():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {"n": {"type": "integer", "exclusiveMinimum": 0, "examples": [1]}},
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
    }


def test_property_named_title_or_format_survives():
    schema = {
        "type": "object",
        "title": "Doc",
        "properties": {
            "title": {"type": "string", "title": "Title"},
            "format": {"type": "string", "enum": ["pdf", "md"]},
            "when": {"type": "string", "format": "date-time"},
            "mail": {"type": "string", "format": "email"},
        },
        "required": ["title", "format"],
    }
    out = gemini_schema(schema)
    assert set(out["properties"]) == {"title", "format", "when", "mail"}
    assert out["properties"]["title"] == {"type": "string", "title": "Title"}
    assert out["properties"]["when"]["format"] == "date-time"
    assert "format" not in out["properties"]["mail"]
    assert out["required"] == ["title", "format"]


def test_refs_are_inlined_and_defs_removed():
    schema = {
        "type": "object",
        "properties": {
            "item": {"$ref": "#/$defs/Item"},
            "items": {"type": "array", "items": {"$ref": "#/definitions/Item"}},
        },
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            }
        },
        "definitions": {"Item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    out = gemini_schema(schema)
    assert "$defs" not in out and "definitions" not in out
    assert out["properties"]["item"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
    }
    assert out["properties"]["items"]["items"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
    }


def test_recursive_ref_stops():
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    out = gemini_schema(schema)
    depth = 0
    while "properties" in out:
        out = out["properties"]["child"]
        depth += 1
    assert out == {"type": "object"} and depth <= 10


def test_nullable_types_and_anyof():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "c": {
                "oneOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"const": 1}}}]
            },
            "d": {"allOf": [{"type": "string", "description": "inner"}]},
        },
    }
    out = gemini_schema(schema)["properties"]
    assert out["a"] == {"type": "string", "nullable": True}
    assert out["b"] == {"type": "integer", "nullable": True}
    assert out["c"]["anyOf"][1]["properties"]["x"] == {"enum": ["1"], "type": "string"}
    assert out["d"] == {"type": "string", "description": "inner"}


def test_empty_object_properties_removed_deep():
    schema = {"type": "object", "properties": {"opts": {"type": "object", "properties": {}}}}
    assert gemini_schema(schema) == {"type": "object", "properties": {"opts": {"type": "object"}}}
