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
    - type: http             # an aepipe instance (the Cloudflare Worker's log pipeline)
      format: aepipe
      base_url: https://aepipe.example.workers.dev
      token: ${AEPIPE_TOKEN} # aepipe's ADMIN_TOKEN
      project: apex-ai-proxy
      logstore: requests     # POST /v1/{project}/{logstore}/ingest  {"points": [...]}
      raw_logstore: raw      # POST /v1/{project}/{raw_logstore}/log {"logs": [...]}
    - type: stdout
```

Every sink also takes `buffer_size` (its own queue, in records) and `max_retries`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

# aepipe refuses other project and logstore names (400), so they are refused here, at load time.
AEPIPE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


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
    # "logs": our own API (sinks/http.py); "aepipe": aepipe's ingest and log API (sinks/aepipe.py)
    format: Literal["logs", "aepipe"] = "logs"
    base_url: str = Field(pattern=r"^https?://")
    token: SecretStr | None = None
    project: str
    logstore: str
    raw_logstore: str | None = None
    timeout_s: float = Field(10, gt=0)

    @model_validator(mode="after")
    def _aepipe_rules(self) -> HttpSinkConfig:
        if self.format != "aepipe":
            return self
        if self.token is None or not self.token.get_secret_value():
            raise ValueError("format aepipe needs `token` (aepipe's ADMIN_TOKEN)")
        for field, name in (
            ("project", self.project),
            ("logstore", self.logstore),
            ("raw_logstore", self.raw_logstore),
        ):
            if name is not None and not AEPIPE_NAME.match(name):
                raise ValueError(f"{field}: aepipe names are 1-64 of A-Z a-z 0-9 _ -")
        return self


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
