"""`import` of files that are not usable configs: a clear message, status 2, nothing written,
no traceback, and no secret from the file in the message."""

from __future__ import annotations

import pytest
from migrate_support import run_import

from apex_ai_proxy.migrate.literals import MAX_SOURCE_CHARS

LEAK = "sk-LEAK-0123456789"

V1_PROVIDERS = (
    "const providerConfig = { a: { base_url: 'https://x.example/v1', api_keys: ['k'] } };\n"
)
V1_MODELS = "const modelProviderConfig = {{ m: {{ providers: [{entry}] }} }};\n"

CASES = {
    "broken_json5": (
        V1_MODELS.format(entry=f"{{ provider: 'a', api_key: '{LEAK}' oops }}"),
        "modelProviderConfig: not a JSON5 literal",
    ),
    "never_closed": (
        f"const modelProviderConfig = {{ m: {{ providers: [{{ api_key: '{LEAK}'",
        "modelProviderConfig: the object literal is never closed",
    ),
    "code_not_data": (
        V1_PROVIDERS + V1_MODELS.format(entry="{ provider: 'a', api_key: process.env.KEY }"),
        "modelProviderConfig: not a JSON5 literal",
    ),
    "providers_without_models": (V1_PROVIDERS, "no `modelProviderConfig = {…}` object literal"),
    "unknown_provider": (
        V1_MODELS.format(entry="{ provider: 'nowhere', model: 'x' }"),
        "modelProviderConfig.m.providers[0].provider: 'nowhere' is not in providerConfig",
    ),
    "entry_not_an_object": (
        V1_PROVIDERS + V1_MODELS.format(entry="'a'"),
        "modelProviderConfig.m.providers[0]: expected an object",
    ),
    "key_not_a_string": (
        V1_PROVIDERS + V1_MODELS.format(entry="{ provider: 'a', api_keys: [42] }"),
        "modelProviderConfig.m.providers[0].api_keys[0]: expected a string",
    ),
    "not_a_worker_config": ('{"name": "something else"}', "no `vars` section"),
    "v2_without_account": ('{"vars": {"GATEWAY_ID": "g"}}', "vars.ACCOUNT_ID: missing or empty"),
    "first_worker_format": (
        '{"vars": {"MODEL_PROVIDER_CONFIG": "{}", "SERVICE_API_KEY": "k"}}',
        "the Worker's first format",
    ),
    "jsonc_broken": ('{"vars": {"ACCOUNT_ID": "a",, }', "wrangler.jsonc: not a JSON5 literal"),
    "too_deep": ("[" * 5000 + "]" * 5000, "nested 5000 levels deep"),
    "empty": ("", "wrangler.jsonc: not a JSON5 literal"),
    "variable_in_a_url": (
        V1_MODELS.format(entry="{ provider: 'a', base_url: 'https://${HOME}.example' }"),
        "modelProviderConfig.m.providers[0].base_url: contains '${'",
    ),
    "variable_in_a_var": (
        '{"vars": {"ACCOUNT_ID": "${SECRET}", "GATEWAY_ID": "g"}}',
        "vars.ACCOUNT_ID: contains '${'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_error_and_writes_nothing(capsys, tmp_path, case: str) -> None:
    text, expected = CASES[case]
    source = tmp_path / "input.js"
    source.write_text(text, encoding="utf-8")
    done = run_import(capsys, tmp_path, source)
    assert done.status == 2, done.err
    assert expected in done.err
    assert done.err.startswith("apex-ai-proxy import: ")
    assert "Traceback" not in done.err and LEAK not in done.err and LEAK not in done.out
    assert not done.yaml_path.exists() and not done.env_path.exists()


def test_a_huge_file_is_refused_before_parsing(capsys, tmp_path) -> None:
    source = tmp_path / "huge.js"
    source.write_text("// " + "x" * MAX_SOURCE_CHARS, encoding="utf-8")
    done = run_import(capsys, tmp_path, source)
    assert done.status == 2
    assert f"larger than {MAX_SOURCE_CHARS} characters" in done.err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "cannot read the Worker config"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00bin"), "is not UTF-8 text"),
        (lambda p: p.mkdir(), "cannot read the Worker config"),
    ],
    ids=["missing", "binary", "directory"],
)
def test_unreadable_files_are_a_clear_error(capsys, tmp_path, make, expected: str) -> None:
    source = tmp_path / "wrangler.jsonc"
    make(source)
    done = run_import(capsys, tmp_path, source)
    assert done.status == 2
    assert expected in done.err


def test_an_existing_output_is_not_replaced_without_force(capsys, tmp_path) -> None:
    source = tmp_path / "wrangler.jsonc"
    source.write_text('{"vars": {"ACCOUNT_ID": "a", "GATEWAY_ID": "g"}}', encoding="utf-8")
    (tmp_path / "apex.yaml").write_text("mine: true\n", encoding="utf-8")
    done = run_import(capsys, tmp_path, source)
    assert done.status == 2 and "pass --force" in done.err
    assert done.yaml == "mine: true\n"
    assert run_import(capsys, tmp_path, source, "--force").status in (0, 1)
