"""Probe of `check` and `serve` with sloppy and hostile config files, as a real subprocess: a
YAML syntax error on a line holding a key, a "billion laughs" of aliases, nesting deeper than
PyYAML's recursion, and numbers that are infinite. Each gives a clear message and exit 1 at
once: no traceback, no hang, no secret value."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import run_cli
from fakes.ports import free_port

KEY = "sk-live-SECRET-abcdef0123456789"
TOKEN = "gw-SECRET-token-0123456789"

BILLION_LAUGHS = "\n".join(
    [f'a0: &a0 ["{KEY}", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def commands(path: Path) -> list[tuple[str, ...]]:
    return [
        ("check", "--config", str(path)),
        ("serve", "--config", str(path), "--port", str(free_port())),
    ]


def assert_clean_refusal(path: Path, expected: str) -> None:
    for args in commands(path):
        result = run_cli(*args, timeout=20)  # a hang fails the test with TimeoutExpired
        output = result.stdout + result.stderr
        assert result.returncode == 1, (args, output)
        assert "Traceback" not in output, output
        assert KEY not in output and TOKEN not in output, output
        assert expected in output, output


def test_a_yaml_syntax_error_on_a_line_with_a_key_does_not_print_the_key(tmp_path: Path) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text(
        f'gateway_tokens: ["{TOKEN}"\nproviders:\n  p:\n    api_keys: [{KEY}]\n',
        encoding="utf-8",
    )
    assert_clean_refusal(path, "invalid YAML at line 2, column 1")


def test_a_tab_indented_line_holding_a_key_is_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text(f"providers:\n  p:\n\tapi_key: {KEY}\n", encoding="utf-8")
    assert_clean_refusal(path, "invalid YAML at line 3")


def test_a_billion_laughs_config_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text(BILLION_LAUGHS + "\n", encoding="utf-8")
    assert_clean_refusal(path, "expands to more than")


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text(f"gateway_tokens: &a [{TOKEN}, *a]\n", encoding="utf-8")
    assert_clean_refusal(path, "expands to more than")


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_values_nested_too_deeply_are_refused_without_a_traceback(
    tmp_path: Path, opening: str
) -> None:
    closing = "]" if opening == "[" else "}"
    path = tmp_path / "apex.yaml"
    path.write_text(f"gateway_tokens: {opening * 5000}1{closing * 5000}\n", encoding="utf-8")
    assert_clean_refusal(path, "nested too deeply")


@pytest.mark.parametrize("field", ["timeout", "connect_timeout", "read_timeout"])
def test_an_infinite_timeout_is_refused(tmp_path: Path, field: str) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text(
        f"providers:\n  p:\n    kind: echo\n    api_keys: [{KEY}]\n    {field}: 1e400\n",
        encoding="utf-8",
    )
    assert_clean_refusal(path, f"providers.p.{field}")


def test_an_infinite_shutdown_grace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "apex.yaml"
    path.write_text("server:\n  shutdown_grace_s: .inf\n", encoding="utf-8")
    assert_clean_refusal(path, "server.shutdown_grace_s")
