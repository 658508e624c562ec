"""Passthrough configuration: who may be reached, and how.

```yaml
passthrough:
  enabled: true
  open: false              # true: no gateway token needed for passthrough requests
  timeout: 300             # seconds of upstream silence before giving up (read timeout)
  connect_timeout: 10      # seconds for DNS + TCP + TLS
  max_body_bytes: 33554432
  allow:
    - host: zenmux.ai
    - host: "*.openai.azure.com"
    - host: vllm.lan
      allow_http: true
      allow_private: true
      ports: [8000]
```

An entry's `ports` lists the only ports allowed; without it only the scheme's default port
(443 for https, 80 for http) is allowed.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def normalize_hostname(host: str) -> str | None:
    """Lower-cased ASCII host name without trailing dot, or None if it is not a valid name.

    IP literals are returned in canonical form (IPv6 without brackets). Non-ASCII names are
    converted with IDNA. Names whose last label is numeric are rejected: they are legacy IPv4
    spellings (`2130706433`, `0x7f.1`) that resolvers would turn into addresses.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower()
    if not host or len(host) > 253:
        return None
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        return None
    return host


class AllowEntry(BaseModel):
    """One reachable upstream host (exact name, IP literal, or `*.suffix`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    allow_http: bool = False
    allow_private: bool = False
    ports: list[int] | None = None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("*."):
            suffix = normalize_hostname(value[2:])
            if suffix is None or "*" in suffix or _is_ip(suffix):
                raise ValueError(f"invalid wildcard host pattern {value!r}")
            return "*." + suffix
        if "*" in value:
            raise ValueError(f"{value!r}: a wildcard is only allowed as a leading '*.'")
        host = normalize_hostname(value)
        if host is None:
            raise ValueError(f"invalid host {value!r}")
        return host

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("ports must not be empty (omit it to allow the default port)")
            for port in value:
                if not 1 <= port <= 65535:
                    raise ValueError(f"port {port} is out of range 1-65535")
        return value

    def matches(self, host: str) -> bool:
        """`host` must already be normalised (see `normalize_hostname`)."""
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and not _is_ip(host)
        return host == self.host

    def port_allowed(self, port: int, scheme: str) -> bool:
        if self.ports is None:
            return port == (443 if scheme == "https" else 80)
        return port in self.ports


class PassthroughConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    open: bool = False
    allow: list[AllowEntry] = Field(default_factory=list)
    timeout: float = Field(default=300.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)

    def entry_for(self, host: str) -> AllowEntry | None:
        """First allowlist entry matching the normalised host; exact entries win over wildcards."""
        wildcard = None
        for entry in self.allow:
            if entry.matches(host):
                if not entry.host.startswith("*."):
                    return entry
                if wildcard is None:
                    wildcard = entry
        return wildcard


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
