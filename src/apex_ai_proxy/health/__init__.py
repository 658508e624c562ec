"""Health of every (provider, key) unit: cooldowns, in-flight counts, latency.

state.py   HealthState (the cooldown policy) and UnitHealth (one unit as a process sees it)
table.py   CooldownTable: the cooldown fields of every unit in fixed slots, in private memory
           or in memory shared by the worker processes of `serve --workers N`
"""

from apex_ai_proxy.health.config import HealthConfig
from apex_ai_proxy.health.state import HealthState, UnitHealth
from apex_ai_proxy.health.table import CooldownTable, same_units, unit_names

__all__ = [
    "CooldownTable",
    "HealthConfig",
    "HealthState",
    "UnitHealth",
    "same_units",
    "unit_names",
]
