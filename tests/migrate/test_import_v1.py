"""`import` of a v1 wrangler-config.js: the original README's example, round trip."""

from __future__ import annotations

import os
import stat

from migrate_support import EXAMPLES, run_import

from apex_ai_proxy.routing import Router

README_V1 = EXAMPLES / "v1-readme.wrangler-config.js"
README_KEYS = ["your-aliyun-key", "your-deepinfra-key", "your-azure-key", "your-custom-azure-key"]


def urls(config, alias: str) -> list[str]:
    targets = Router(config).resolve(alias).targets
    return [t.adapter.chat_url(t.adapter.base_for(t), t.upstream_model, False) for t in targets]


def test_the_readme_example_round_trips_with_keys_apart(capsys, tmp_path) -> None:
    done = run_import(capsys, tmp_path, README_V1, "--azure-resource", "myres")
    assert done.status == 0, done.err
    assert "check: OK: 3 provider(s), 2 model(s)" in done.err
    for key in README_KEYS:
        assert key not in done.yaml and key not in done.out and key not in done.err
    assert sorted(done.env().values()) == sorted(README_KEYS)
    assert stat.S_IMODE(os.stat(done.env_path).st_mode) == 0o600

    config = done.config()
    assert {n: p.kind for n, p in config.providers.items()} == {
        "aliyuncs": "openai",
        "deepinfra": "openai",
        "azure": "azure",
    }
    assert config.providers["aliyuncs"].keys() == ["your-aliyun-key"]
    entries = config.models["DeepSeek-R1"].providers
    assert [(e.provider, e.model or "DeepSeek-R1") for e in entries] == [
        ("aliyuncs", "deepseek-r1"),
        ("deepinfra", "deepseek-ai/DeepSeek-R1"),
        ("azure", "DeepSeek-R1"),
    ]
    assert entries[2].keys() == ["your-custom-azure-key"]
    assert urls(config, "DeepSeek-R1") == [
        "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
        "https://api.deepinfra.com/v1/openai/chat/completions",
        "https://your-custom-endpoint.azure.com/openai/deployments/DeepSeek-R1"
        "/chat/completions?api-version=2024-10-21",
    ]
    assert urls(config, "gpt-4o-mini") == [
        "https://myres.azure.com/openai/deployments/gpt-4o-mini/chat/completions"
        "?api-version=2024-10-21"
    ]
    assert not config.passthrough.enabled
    assert "# passthrough:" in done.yaml


def test_without_an_env_file_the_secrets_are_printed_as_exports(capsys, tmp_path) -> None:
    done = run_import(capsys, tmp_path, README_V1, "--azure-resource", "r", env_file=False)
    assert done.status == 0, done.err
    assert "export ALIYUNCS_API_KEY=your-aliyun-key" in done.out.splitlines()
    assert all(line.startswith("export ") for line in done.out.splitlines())
    assert "your-aliyun-key" not in done.yaml


def test_an_unknown_azure_resource_is_left_to_the_environment(
    capsys, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("AZURE_RESOURCE", raising=False)
    done = run_import(capsys, tmp_path, README_V1)
    assert done.status == 1  # written, but check cannot fill `:name`
    assert "resource: ${AZURE_RESOURCE}" in done.yaml
    assert "environment variable 'AZURE_RESOURCE' is not set" in done.err
    assert "--azure-resource" in done.err


def test_entries_with_their_own_urls_and_several_keys(capsys, tmp_path) -> None:
    done = run_import(capsys, tmp_path, EXAMPLES / "v1-inline.wrangler-config.js")
    assert done.status == 0, done.err
    config = done.config()
    assert config.gateway_tokens == ["svc-SECRET-token-1"]
    aliyun, azure = config.models["DeepSeek-R1"].providers
    assert aliyun.keys() == ["ali-SECRET-1", "ali-SECRET-2", "ali-SECRET-3"]
    assert azure.keys() == ["az-SECRET-}//-4"]  # a `}` and `//` inside a string
    assert config.providers["azure"].kind == "azure"
    assert urls(config, "DeepSeek-R1")[1] == (
        "https://res.services.ai.azure.com/models/chat/completions?api-version=2024-10-21"
    )
    assert "SECRET" not in done.yaml
