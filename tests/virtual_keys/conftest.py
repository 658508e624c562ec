"""The fixtures of vk_support.py (store_config, redis_state), which holds the helpers too: test
modules import those from vk_support, never from `conftest` (another folder's conftest may be
the module that name finds first)."""

from vk_support import redis_state, store_config  # noqa: F401
