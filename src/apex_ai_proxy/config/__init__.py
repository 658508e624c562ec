"""Configuration: the schema of the file (schema.py) and how a config is read, substituted and
checked (load.py). Import from here: `from apex_ai_proxy.config import Config, load_config_file`.
"""

from apex_ai_proxy.config.load import (
    MAX_CONFIG_VALUES,
    config_from_env,
    find_config_path,
    load_config,
    load_config_file,
    parse_config,
    substitute_env,
)
from apex_ai_proxy.config.schema import (
    PROVIDER_KINDS,
    STRATEGIES,
    Config,
    ConfigError,
    ModelConfig,
    ModelEntry,
    Price,
    ProviderConfig,
    RetryConfig,
    ServerConfig,
)

__all__ = [
    "MAX_CONFIG_VALUES",
    "PROVIDER_KINDS",
    "STRATEGIES",
    "Config",
    "ConfigError",
    "ModelConfig",
    "ModelEntry",
    "Price",
    "ProviderConfig",
    "RetryConfig",
    "ServerConfig",
    "config_from_env",
    "find_config_path",
    "load_config",
    "load_config_file",
    "parse_config",
    "substitute_env",
]
