"""Reading a config: YAML file (or environment only), `${VAR}` substitution, validation with
paths, and the checks across sections.

Every problem is reported with its path in the file (``models.gpt-4o.providers[1].provider:
unknown provider 'azur'``) so `apex-ai-proxy check` can list them all at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from apex_ai_proxy.config.schema import Config, ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def substitute_env(value: Any, env: dict[str, str], path: str, problems: list[str]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of the parsed YAML tree."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable '{name}' is not set")
            return ""

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: substitute_env(v, env, f"{path}.{k}" if path else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


# A real config has hundreds of values. YAML aliases repeat an anchor without copying it, so
# nine lines of anchors (a "billion laughs") expand to 9**9 values that every walk would visit.
MAX_CONFIG_VALUES = 100_000


def _too_many_values(raw: Any, limit: int) -> bool:
    """Whether the tree holds more than `limit` values, counting each alias expansion; stops
    counting at the limit."""
    pending, seen = [raw], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _yaml_problem(path: str | Path, exc: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's quote of the offending line: that line may hold a key."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = ": ".join(
        part for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part
    )
    return f"{path}: invalid YAML{where}: {what or type(exc).__name__}"


def _error_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _unknown_providers(data: dict[str, Any]) -> list[str]:
    """Model entries naming a provider that does not exist; checked on the raw tree so it is
    reported together with any other problem."""
    providers = data.get("providers") if isinstance(data.get("providers"), dict) else {}
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    known = ", ".join(sorted(providers)) or "none configured"
    problems = []
    for alias, model in models.items():
        entries = model.get("providers") if isinstance(model, dict) else None
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("provider") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in providers:
                problems.append(
                    f"models.{alias}.providers[{i}].provider: unknown provider '{name}' (known: {known})"
                )
    return problems


def _cross_check(config: Config) -> list[str]:
    from apex_ai_proxy.providers.checks import kind_problems  # lazy: providers import config

    problems = []
    if set(config.admin_tokens) & set(config.gateway_tokens):
        problems.append(
            "admin_tokens: a token is also in gateway_tokens; an admin token must be its own "
            "(a client token never opens the admin API)"
        )
    for name, provider in config.providers.items():
        path = f"providers.{name}"
        if "#" in name:
            problems.append(f"{path}: provider names cannot contain '#'")
        if provider.kind == "azure" and not provider.base_url:
            problems.append(f"{path}.base_url: required for kind 'azure'")
        problems.extend(kind_problems(config, name, provider))
    return problems


def parse_config(raw: Any, env: dict[str, str] | None = None, source: str = "") -> Config:
    env = dict(os.environ) if env is None else env
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping of settings"])
    if _too_many_values(raw, MAX_CONFIG_VALUES):
        raise ConfigError(
            [
                f"(top level): the config expands to more than {MAX_CONFIG_VALUES} values "
                "(YAML aliases repeating anchors?)"
            ]
        )
    problems: list[str] = []
    data = substitute_env(raw, env, "", problems)
    problems.extend(_unknown_providers(data))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(f"{_error_path(err['loc'])}: {err['msg']}")
        raise ConfigError(problems) from None
    problems.extend(_cross_check(config))
    if problems:
        raise ConfigError(problems)
    config.source = source
    return config


def load_config_file(path: str | Path, env: dict[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        raw = yaml.safe_load(text)
        return parse_config(raw, env, source=str(path))
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(path, exc)]) from None
    except RecursionError:  # PyYAML and the walks recurse once per level of nesting
        raise ConfigError([f"{path}: values are nested too deeply"]) from None


# Providers the gateway configures by itself from well-known environment variables.
ENV_PROVIDERS: dict[str, tuple[str, str, str]] = {
    # name: (env var, kind, base url)
    "openai": ("OPENAI_API_KEY", "openai", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_API_KEY", "anthropic", "https://api.anthropic.com"),
    "gemini": ("GEMINI_API_KEY", "gemini", "https://generativelanguage.googleapis.com"),
    "deepseek": ("DEEPSEEK_API_KEY", "openai", "https://api.deepseek.com/v1"),
    "groq": ("GROQ_API_KEY", "openai", "https://api.groq.com/openai/v1"),
    "mistral": ("MISTRAL_API_KEY", "openai", "https://api.mistral.ai/v1"),
    "openrouter": ("OPENROUTER_API_KEY", "openai", "https://openrouter.ai/api/v1"),
    "together": ("TOGETHER_API_KEY", "openai", "https://api.together.xyz/v1"),
    "xai": ("XAI_API_KEY", "openai", "https://api.x.ai/v1"),
    "cerebras": ("CEREBRAS_API_KEY", "openai", "https://api.cerebras.ai/v1"),
    "deepinfra": ("DEEPINFRA_API_KEY", "openai", "https://api.deepinfra.com/v1/openai"),
}


def config_from_env(env: dict[str, str] | None = None) -> Config:
    """No config file: one provider per well-known API key variable, plus the local echo provider."""
    env = dict(os.environ) if env is None else env
    providers: dict[str, Any] = {"echo": {"kind": "echo"}}
    for name, (var, kind, base_url) in ENV_PROVIDERS.items():
        key = env.get(var, "").strip()
        if key:
            keys = [k.strip() for k in key.split(",") if k.strip()]
            providers[name] = {"kind": kind, "base_url": base_url, "api_keys": keys}
    if env.get("GOOGLE_API_KEY") and "gemini" not in providers:
        var, kind, base_url = ENV_PROVIDERS["gemini"]
        providers["gemini"] = {
            "kind": kind,
            "base_url": base_url,
            "api_keys": [env["GOOGLE_API_KEY"]],
        }
    raw: dict[str, Any] = {
        "providers": providers,
        "models": {"echo": {"providers": [{"provider": "echo"}]}},
    }
    tokens = [t for t in env.get("APEX_GATEWAY_TOKENS", "").split(",") if t.strip()]
    if tokens:
        raw["gateway_tokens"] = tokens
    return parse_config(raw, env, source="environment")


def find_config_path(cli_path: str | None, env: dict[str, str] | None = None) -> str | None:
    """--config, then APEX_CONFIG, then ./apex.yaml; None means "configure from the environment"."""
    env = dict(os.environ) if env is None else env
    if cli_path:
        return cli_path
    if env.get("APEX_CONFIG"):
        return env["APEX_CONFIG"]
    if Path("apex.yaml").exists():
        return "apex.yaml"
    return None


def load_config(cli_path: str | None = None, env: dict[str, str] | None = None) -> Config:
    path = find_config_path(cli_path, env)
    if path is None:
        return config_from_env(env)
    return load_config_file(path, env)
