import pytest

from apex_ai_proxy.routing.mapping import MappingError, map_model, parse_mapping


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_empty_header_means_no_mapping(value):
    assert parse_mapping(value) == {}


def test_parse_trims_entries_and_names():
    assert parse_mapping(" gpt-4o # gpt-4.1 ,claude-3#claude-sonnet-4 ") == {
        "gpt-4o": "gpt-4.1",
        "claude-3": "claude-sonnet-4",
    }


@pytest.mark.parametrize(
    "value, bad",
    [
        ("gpt-4o", "'gpt-4o'"),
        ("a#b,gpt-4o", "'gpt-4o'"),
        ("#b", "'#b'"),
        ("a#", "'a#'"),
        (" a # ", "'a #'"),
        ("a#b#c", "'a#b#c'"),
        ("a#b,", "''"),
        ("a#b,,c#d", "''"),
    ],
)
def test_malformed_entry_is_named(value, bad):
    with pytest.raises(MappingError, match=f"malformed entry {bad}"):
        parse_mapping(value)


def test_conflicting_duplicate_is_an_error_but_repeat_is_not():
    assert parse_mapping("a#b,a#b") == {"a": "b"}
    with pytest.raises(MappingError, match="'a' is mapped twice"):
        parse_mapping("a#b,a#c")


def test_map_bare_model():
    assert map_model("gpt-4o", {}, {"gpt-4o": "gpt-4.1"}) == "gpt-4.1"


def test_provider_suffix_is_kept_and_only_bare_name_compared():
    header = parse_mapping("gpt-4o#gpt-4.1")
    assert map_model("gpt-4o#openai", {}, header) == "gpt-4.1#openai"
    assert map_model("gpt-4o-mini#openai", {}, header) == "gpt-4o-mini#openai"


def test_provider_is_after_the_last_hash():
    assert map_model("org#model#azure", {"org#model": "other"}, {}) == "other#azure"


def test_unmatched_model_is_returned_unchanged():
    model = "llama-3#groq"
    assert map_model(model, {"gpt-4o": "x"}, {"claude": "y"}) is model


def test_config_map_applies_before_header_map():
    assert map_model("a", {"a": "b"}, {"b": "c"}) == "c"
    # the header sees the configured result, not the original name
    assert map_model("a", {"a": "b"}, {"a": "z"}) == "b"
    assert map_model("a#p", {"a": "b"}, {"b": "c"}) == "c#p"


def test_configured_target_provider_used_only_without_client_provider():
    config = {"fast": "llama-3.3-70b#groq"}
    assert map_model("fast", config, {}) == "llama-3.3-70b#groq"
    assert map_model("fast#cerebras", config, {}) == "llama-3.3-70b#cerebras"
    assert map_model("fast", config, {"llama-3.3-70b": "llama-4"}) == "llama-4#groq"


def test_no_maps_is_identity():
    assert map_model("gpt-4o#openai", {}, {}) == "gpt-4o#openai"
