"""`--repeat N`: the order of runs inside a round, and the medians over the rounds.

A round runs every selected scenario once; the next round starts only after it. A slow phase
of a noisy machine then lands on every scenario alike instead of on whichever ran during it.
Scenarios that are compared with each other (PAIRS: a baseline and its variants) run back to
back, and the group reverses its order every round so no side always gets the warmer (or the
busier) slot.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence

# baseline -> its variants: each compared with the baseline round by round, run back to back.
PAIRS = {"chat_c50": ("chat_c50_records", "chat_c50_pool", "chat_c50_pool_redis", "chat_c50_vkey")}

# How one number is combined over the runs when the median is not the right summary.
SUMMED = {"errors", "errors_total", "failures", "failed_runs"}  # any failure in any run counts
MAXED = {"max", "peak_rss_mb"}  # a worst case stays a worst case
MINNED = {"min", "completed"}
LAST = {"profile"}  # one run's py-spy summary, whole (its file is the last round's too)


def round_order(names: Sequence[str], round_index: int) -> list[str]:
    """`names` in their usual order, each baseline's selected variants moved next to it.

    Odd rounds run the group in reverse (the variants first).
    """
    partners = {}
    for base, variants in PAIRS.items():
        chosen = [v for v in variants if v in names]
        if base in names and chosen:
            partners[base] = chosen
    placed = {v for chosen in partners.values() for v in chosen}
    order: list[str] = []
    for name in names:
        if name in placed:
            continue
        if name in partners:
            group = [name, *partners[name]]
            order += reversed(group) if round_index % 2 else group
        else:
            order.append(name)
    return order


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _median(values: list[float]) -> float:
    middle = statistics.median(values)
    if all(isinstance(v, int) for v in values) and middle == int(middle):
        return int(middle)
    return round(middle, 3)


def combine(values: Iterable[object], path: tuple[str, ...] = ()) -> object:
    """One value from the same field of several runs: medians, except SUMMED/MAXED/MINNED.

    Dicts are combined key by key; booleans must hold in every run; the answer check keeps the
    first failure; any other text (a log tail) and a profile are the last run's.
    """
    present = [v for v in values if v is not None]
    if not present:
        return None
    key = path[-1] if path else ""
    if key in LAST:
        return present[-1]
    if all(isinstance(v, dict) for v in present):
        keys: dict[str, None] = {}
        for v in present:
            keys.update(dict.fromkeys(v))
        return {k: combine([v.get(k) for v in present], (*path, k)) for k in keys}
    if all(isinstance(v, bool) for v in present):
        return all(present)
    if all(_number(v) for v in present):
        if SUMMED.intersection(path):
            return sum(present)
        if key in MAXED:
            return max(present)
        if key in MINNED:
            return min(present)
        return _median(present)
    if key == "check":
        return next((v for v in present if v != "ok"), "ok")
    return present[-1]


def combine_results(results: list[dict | None]) -> dict | None:
    """Combine one side (direct or gateway) of several runs; runs that failed are counted.

    A run that failed outright (`{"error": ...}`, e.g. the gateway did not start) has no numbers
    to take the median of: the others are combined, and the failures added to `errors_total`.
    """
    results = [r for r in results if r]
    failed = [r for r in results if "error" in r]
    ok = [r for r in results if "error" not in r]
    if not ok:
        return failed[0] if failed else None
    combined = combine(ok)
    assert isinstance(combined, dict)
    if failed:
        combined["failed_runs"] = len(failed)
        combined["failed_sample"] = failed[0]["error"][:500]
        if "errors_total" in combined:
            combined["errors_total"] += len(failed)
        if "all_completed" in combined:
            combined["all_completed"] = False
    return combined


def spread(values: Iterable[object]) -> dict | None:
    numbers = [v for v in values if _number(v)]
    return {"min": min(numbers), "max": max(numbers)} if numbers else None


def pick(result: dict | None, *path: str) -> object:
    node: object = result
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def paired(
    base: list[dict], variant: list[dict], value: Callable[[dict, dict], float | None]
) -> list[dict]:
    """`value(base_run, variant_run)` for every round that has both (and a value)."""
    by_round = {run["round"]: run for run in base}
    out = []
    for run in variant:
        other = by_round.get(run["round"])
        number = value(other, run) if other else None
        if number is not None:
            out.append({"round": run["round"], "value": number})
    return out


def median(values: list[float]) -> float | None:
    return _median(values) if values else None
