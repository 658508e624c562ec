"""`import` of a v2 wrangler.jsonc (+ .dev.vars): the Worker's AI Gateway mode, round trip."""

from __future__ import annotations

import shutil

from migrate_support import EXAMPLES, run_import

from apex_ai_proxy.routing import Router

GATEWAY_TOKEN = "gw-SECRET-0123456789"
AEPIPE_TOKEN = "ae-SECRET 42"


def imported(capsys, tmp_path, dev_vars: bool = True):
    source = tmp_path / "worker" / "wrangler.jsonc"
    source.parent.mkdir()
    shutil.copy(EXAMPLES / "v2-readme.wrangler.jsonc", source)
    args = ["--dev-vars", str(EXAMPLES / "v2-readme.dev.vars")] if dev_vars else []
    return run_import(capsys, tmp_path, source, *args)


def test_the_gateway_mode_round_trips(capsys, tmp_path) -> None:
    done = imported(capsys, tmp_path)
    assert done.status == 0, done.err
    assert GATEWAY_TOKEN not in done.yaml and "ae-SECRET" not in done.yaml
    assert done.env()["GATEWAY_TOKEN"] == GATEWAY_TOKEN
    assert done.env()["AEPIPE_TOKEN"] == AEPIPE_TOKEN
    config = done.config()
    assert config.gateway_tokens == [GATEWAY_TOKEN]  # what the Worker's clients sent
    compat, native = config.providers["cloudflare"], config.providers["cloudflare-anthropic"]
    for provider in (compat, native):
        assert provider.kind == "cloudflare"
        assert (provider.account_id, provider.gateway_id) == (
            "0123456789abcdef0123456789abcdef",
            "apex",
        )
        assert provider.gateway_token == GATEWAY_TOKEN
    assert native.native == "anthropic" and compat.native is None
    azure = config.providers["azure"]
    assert (azure.base_url, azure.api_version) == (
        "https://my-azure.openai.azure.com",
        "2025-01-01-preview",
    )
    assert not config.passthrough.enabled


def test_the_readme_model_names_route_as_they_did(capsys, tmp_path) -> None:
    router = Router(imported(capsys, tmp_path).config())

    def where(model: str) -> tuple[str, str]:
        target = router.resolve(model).targets[0]
        return target.provider, target.upstream_model

    assert where("gpt-5.5#openai") == ("cloudflare", "openai/gpt-5.5")
    assert where("deepseek-v4-pro#deepseek") == ("cloudflare", "deepseek/deepseek-v4-pro")
    assert where("gemini-2.0-flash#google-ai-studio") == (
        "cloudflare",
        "google-ai-studio/gemini-2.0-flash",
    )
    assert where("mistral-large-latest#mistral") == ("cloudflare", "mistral/mistral-large-latest")
    assert where("claude-opus-4.7#anthropic") == ("cloudflare-anthropic", "claude-opus-4.7")
    assert where("gpt-4o#azure-openai") == ("azure", "gpt-4o")


def test_aepipe_becomes_an_enabled_aepipe_sink_with_the_token_as_a_reference(
    capsys, tmp_path
) -> None:
    done = imported(capsys, tmp_path)
    assert done.status == 0, done.err
    assert "token: ${AEPIPE_TOKEN}" in done.yaml and "ae-SECRET" not in done.yaml
    records = done.config().records
    assert records.enabled and records.raw  # the Worker shipped full bodies to `raw`
    sqlite, aepipe = records.sinks
    assert sqlite.type == "sqlite"  # `logs` and `stats` keep working locally
    assert (aepipe.type, aepipe.format) == ("http", "aepipe")
    assert aepipe.base_url == "https://aepipe.example.workers.dev"
    assert (aepipe.project, aepipe.logstore, aepipe.raw_logstore) == (
        "apex-ai-proxy",
        "requests",
        "raw",
    )
    assert aepipe.token.get_secret_value() == AEPIPE_TOKEN
    assert AEPIPE_TOKEN in done.config().secrets()  # redacted wherever it could appear


def test_without_the_aepipe_token_the_check_says_what_to_set(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_TOKEN", GATEWAY_TOKEN)
    monkeypatch.delenv("AEPIPE_TOKEN", raising=False)
    done = imported(capsys, tmp_path, dev_vars=False)
    assert done.status == 1
    assert "environment variable 'AEPIPE_TOKEN' is not set" in done.err
    assert "AepipeToken" in done.err  # the note says where its value lives


def test_a_dev_vars_beside_the_file_is_found(capsys, tmp_path) -> None:
    source_dir = tmp_path / "worker"
    done = imported(capsys, tmp_path, dev_vars=False)
    assert done.env()["GATEWAY_TOKEN"] == ""  # none beside it yet
    shutil.copy(EXAMPLES / "v2-readme.dev.vars", source_dir / ".dev.vars")
    again = run_import(capsys, tmp_path, source_dir / "wrangler.jsonc", "--force")
    assert again.status == 0, again.err
    assert again.env()["GATEWAY_TOKEN"] == GATEWAY_TOKEN


def test_without_secret_values_the_check_says_what_to_set(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_TOKEN", raising=False)
    done = imported(capsys, tmp_path, dev_vars=False)
    assert done.status == 1
    assert "environment variable 'GATEWAY_TOKEN' is not set" in done.err
    assert "Secrets Store" in done.err
