"""Observability: request records, their sinks, the read side for the CLI, and metrics.

The core uses:

    allow_label_values(models, providers)   # the configured names metrics may use as labels
    recorder = Recorder(config.records, secrets=[...provider keys..., ...gateway tokens...])
    await recorder.start()                  # on app startup
    recorder.submit(RequestRecord(...))     # once per request, when the response is done
    await recorder.stop(grace=5)            # on app shutdown
    set_keys_in_cooldown(provider, n)       # when health state changes
    set_degraded(provider, keys, endpoints) # health's degraded keys and endpoints, likewise
    set_pool_keys(provider, state, n)       # the key pool's states, before /metrics renders
    body, content_type = render_metrics()   # GET /metrics
"""

from .config import (
    HttpSinkConfig,
    JsonlSinkConfig,
    RecordsConfig,
    SqliteSinkConfig,
    StdoutSinkConfig,
)
from .metrics import (
    allow_label_values,
    mark_process_dead,
    observe,
    prepare_multiprocess_dir,
    render_metrics,
    set_degraded,
    set_keys_in_cooldown,
    set_pool_fallbacks,
    set_pool_keys,
)
from .queue import Recorder
from .record import Attempt, RawRecord, RequestRecord
from .redact import Redactor

__all__ = [
    "Attempt",
    "allow_label_values",
    "HttpSinkConfig",
    "JsonlSinkConfig",
    "RawRecord",
    "Recorder",
    "RecordsConfig",
    "Redactor",
    "RequestRecord",
    "SqliteSinkConfig",
    "StdoutSinkConfig",
    "mark_process_dead",
    "observe",
    "prepare_multiprocess_dir",
    "render_metrics",
    "set_degraded",
    "set_keys_in_cooldown",
    "set_pool_fallbacks",
    "set_pool_keys",
]
