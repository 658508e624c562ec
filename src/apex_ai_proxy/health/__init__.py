"""Health of every key and provider endpoint: cooldowns, fault windows, in-flight counts, latency.

state.py   HealthState (the cooldown policy) and UnitHealth (one unit as a process sees it)
names.py   unit names: keys ("provider#0") and endpoints ("provider https://host/v1")
faults.py  fault windows: N of its last M attempts failed (5xx, timeouts) degrade a unit
table.py   CooldownTable: the cooldown fields of every unit in fixed slots, in private memory
           or in memory shared by the worker processes of `serve --workers N`
"""

from apex_ai_proxy.health.config import HealthConfig, effective_health
from apex_ai_proxy.health.names import is_endpoint
from apex_ai_proxy.health.state import HealthState, UnitHealth
from apex_ai_proxy.health.table import (
    CooldownTable,
    endpoint_names,
    same_units,
    table_names,
    unit_names,
)

__all__ = [
    "CooldownTable",
    "HealthConfig",
    "HealthState",
    "UnitHealth",
    "effective_health",
    "endpoint_names",
    "is_endpoint",
    "same_units",
    "table_names",
    "unit_names",
]
