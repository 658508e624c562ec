"""`virtual_keys:` — where the keys live and how long a replica trusts what it read.

virtual_keys:
  store: {backend: sqlite, path: apex-keys.db}          # or
  store: {backend: postgres, dsn: "postgresql://user@db/apex"}
  cache_ttl_s: 5        # a revocation reaches every replica within this
  metrics_per_key: true # /metrics series per key name (turn off for many keys)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Table names are built from the prefix: a closed alphabet, never quoted input.
TABLE_PREFIX = r"^[a-z_][a-z0-9_]{0,30}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqliteStoreConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "apex-keys.db"
    table_prefix: str = Field(default="apex_", pattern=TABLE_PREFIX)
    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)


class PostgresStoreConfig(_Strict):
    backend: Literal["postgres"]
    dsn: str = Field(min_length=1)
    table_prefix: str = Field(default="apex_", pattern=TABLE_PREFIX)
    pool_size: int = Field(default=4, ge=1, le=100)
    timeout_s: float = Field(default=5.0, gt=0, le=120)


StoreConfig = Annotated[SqliteStoreConfig | PostgresStoreConfig, Field(discriminator="backend")]


class VirtualKeysConfig(_Strict):
    store: StoreConfig = Field(default_factory=SqliteStoreConfig)
    #: Seconds a replica serves from its in-memory copy before reading the store again: the
    #: longest a revocation, a change or a new key takes to reach it.
    cache_ttl_s: float = Field(default=5.0, ge=0.05, le=3600)
    metrics_per_key: bool = True
