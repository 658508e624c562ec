"""Config builders and helpers shared by the reload tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from fakes.openai_upstream import FakeUpstream

CLIENT = "client-token-reload-0123456789"
ADMIN = "admin-token-reload-abcdefghij"
SECRETS = ("sk-reload-first-secret-0001", "sk-reload-second-secret-0002", "sk-reload-third-0003")
FAST_RETRY = {"cooldown_base_s": 0.3, "cooldown_max_s": 300.0, "auth_failure_cooldown_s": 3600.0}


def provider(fake: FakeUpstream, *keys: str) -> dict[str, Any]:
    return {
        "kind": "openai",
        "base_url": fake.base_url,
        "api_keys": list(keys),
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


def config(providers: dict[str, Any], models: dict[str, list[str]], **top: Any) -> dict[str, Any]:
    return {
        "gateway_tokens": [CLIENT],
        "admin_tokens": [ADMIN],
        "providers": providers,
        "models": {
            name: {"strategy": "round-robin", "providers": [{"provider": p} for p in entries]}
            for name, entries in models.items()
        },
        "retry": FAST_RETRY,
        **top,
    }


def rewrite(path: Path, data: dict[str, Any] | str) -> None:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def check_problems(bin_path: Path, path: Path, env: dict[str, str] | None = None) -> list[str]:
    """The lines `apex-ai-proxy check` prints for the file (stderr), in order."""
    result = subprocess.run(
        [str(bin_path), "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def no_secret_in(text: str | bytes | dict[str, Any]) -> None:
    if isinstance(text, dict):
        text = json.dumps(text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for secret in (*SECRETS, CLIENT, ADMIN):
        assert secret not in text, f"a secret leaked: {text[:500]}"
