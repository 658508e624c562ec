"""Configuration of the request-records pipeline (the `records:` section).

```yaml
records:
  enabled: true
  queue_size: 10000          # records waiting for the sinks; beyond that new records are dropped
  batch_size: 200
  flush_interval_s: 1.0
  raw: false                 # also capture (redacted) raw headers and bodies
  raw_body_limit_bytes: 65536
  sinks:                     # default: one sqlite sink
    - type: sqlite
      path: apex-records.db
      retention_days: 7
      max_rows: 1000000      # optional
      max_mb: 512            # optional
    - type: jsonl
      path: records.jsonl
    - type: http
      base_url: https://logs.example.com
      token: secret
      project: apex
      logstore: requests
      raw_logstore: requests-raw
      timeout_s: 10
    - type: stdout
```

Every sink also takes `buffer_size` (its own queue, in records) and `max_retries`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SinkConfig(_Strict):
    buffer_size: int = Field(10_000, ge=1, description="records this sink may hold back")
    max_retries: int = Field(5, ge=0, description="retries of a failed batch before dropping it")


class SqliteSinkConfig(_SinkConfig):
    type: Literal["sqlite"] = "sqlite"
    path: str = "apex-records.db"
    retention_days: float = Field(7, ge=0, description="0 keeps records forever")
    max_rows: int | None = Field(None, ge=1)
    max_mb: float | None = Field(None, gt=0)
    busy_timeout_ms: int = Field(5000, ge=0)
    prune_interval_s: float = Field(300, gt=0)


class JsonlSinkConfig(_SinkConfig):
    type: Literal["jsonl"] = "jsonl"
    path: str


class HttpSinkConfig(_SinkConfig):
    type: Literal["http"] = "http"
    base_url: str = Field(pattern=r"^https?://")
    token: SecretStr | None = None
    project: str
    logstore: str
    raw_logstore: str | None = None
    timeout_s: float = Field(10, gt=0)


class StdoutSinkConfig(_SinkConfig):
    type: Literal["stdout"] = "stdout"


SinkConfig = Annotated[
    SqliteSinkConfig | JsonlSinkConfig | HttpSinkConfig | StdoutSinkConfig,
    Field(discriminator="type"),
]


class RecordsConfig(_Strict):
    enabled: bool = True
    queue_size: int = Field(10_000, ge=1)
    batch_size: int = Field(200, ge=1)
    flush_interval_s: float = Field(1.0, gt=0)
    raw: bool = False
    raw_body_limit_bytes: int = Field(64 * 1024, ge=0)
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SqliteSinkConfig()])
