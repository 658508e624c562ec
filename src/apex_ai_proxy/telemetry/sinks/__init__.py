"""Record sinks: one module per destination behind the `Sink` interface in `base`."""

from __future__ import annotations

from ..config import (
    HttpSinkConfig,
    JsonlSinkConfig,
    SinkConfig,
    SqliteSinkConfig,
    StdoutSinkConfig,
)
from .base import Sink, SinkError, ThreadedSink
from .http import HttpSink
from .jsonl import JsonlSink
from .sqlite import SqliteSink
from .stdout import StdoutSink

__all__ = [
    "HttpSink",
    "JsonlSink",
    "Sink",
    "SinkError",
    "SqliteSink",
    "StdoutSink",
    "ThreadedSink",
    "build_sink",
]


def build_sink(config: SinkConfig, name: str | None = None) -> Sink:
    """The sink a config entry describes. `name` labels its drop counter (default: its type)."""
    name = name or config.type
    if isinstance(config, SqliteSinkConfig):
        return SqliteSink(config, name)
    if isinstance(config, JsonlSinkConfig):
        return JsonlSink(config, name)
    if isinstance(config, HttpSinkConfig):
        return HttpSink(config, name)
    if isinstance(config, StdoutSinkConfig):
        return StdoutSink(config, name)
    raise TypeError(f"unknown sink config {type(config).__name__}")
