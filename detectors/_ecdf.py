"""Exact ECDF distances between a baseline and a window, in one SQL pass per feature group.

For each feature, the engine sorts the union of both sides' values (carrying a 0/1 side flag,
with ``arraySort`` keyed on the values), takes cumulative counts ``R_i`` (reference values at or
before position ``i``) and ``C_i`` (current), and with ``dx_i = x_{i+1} − x_i``:

- first Wasserstein distance ``W1 = Σ_i |R_i / n_ref − C_i / n_cur| · dx_i`` (ties have
  ``dx = 0`` so only the last of a run of equal values counts, with both ECDFs complete there),
  as ``scipy.stats.wasserstein_distance``;
- Kolmogorov-Smirnov ``D = max |R_i / n_ref − C_i / n_cur|`` over the last position of each run
  of equal values (``dx_i != 0``; at the very last position both ECDFs are 1), as
  ``scipy.stats.ks_2samp``; the counts at the first maximum are returned for the p-value.

Memory is bounded by a budget of values held at once (``DEFAULT_BUDGET``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keelwatch.store import Store

from ._sql import CURRENT_NUM, CURRENT_ONE, REFERENCE_NUM, REFERENCE_ONE, Window

__all__ = ["EcdfDistances", "ecdf_distances", "ecdf_query", "query_distances"]


@dataclass(frozen=True)
class EcdfDistances:
    """W1 and the KS statistic of one feature, with the counts behind them."""

    n_ref: int
    n_cur: int
    wasserstein: float
    ks_d: float
    ks_ref_below: int
    ks_cur_below: int


def ecdf_query(reference: str, current: str, by_feature: bool = False) -> str:
    """The ECDF query over two ``x`` sources (constant SQL fragments, never user input);
    ``by_feature``: the sources have a ``feature`` column too and each feature is one row."""
    key = "feature, " if by_feature else ""
    group = " GROUP BY feature" if by_feature else ""
    return f"""
SELECT {key}nr, nc, w, d, cr[i] AS ref_below, i - cr[i] AS cur_below FROM (
 SELECT {key}nr, nc,
  arrayPushBack(arrayPopFront(arrayDifference(xs)), 0.) AS dx,
  arrayCumSum(ss) AS cr,
  arrayMap((r, j) -> abs(r / nr - (j - r) / nc), cr, arrayEnumerate(cr)) AS gap,
  arraySum((g, t) -> g * t, gap, dx) AS w,
  arrayMax((g, t) -> if(t != 0, g, 0.), gap, dx) AS d,
  arrayFirstIndex((g, t) -> t != 0 AND g = d, gap, dx) AS i FROM (
  SELECT {key}arraySort(groupArray(x)) AS xs,
   arraySort((s, v) -> v, groupArray(s), groupArray(x)) AS ss,
   toUInt64(sum(s)) AS nr, count() - nr AS nc
  FROM (
   SELECT {key}x, toUInt8(1) AS s FROM ({reference})
   UNION ALL SELECT {key}x, toUInt8(0) AS s FROM ({current})
  ){group}
 )
)
"""


_QUERY = ecdf_query(REFERENCE_ONE, CURRENT_ONE)
_GROUPED = ecdf_query(REFERENCE_NUM, CURRENT_NUM, by_feature=True)
#: Values (both sides, all features of a query) held in the engine at once. On 1M + 1M rows x 20
#: features, 10M (five features per query) ran in 6-9 s against 9 s one feature at a time, with
#: peak RSS 1.20 GB against 1.10 GB (shared 2-core machine, noisy).
DEFAULT_BUDGET = 10_000_000


def _distances(row: dict[str, Any]) -> EcdfDistances | None:
    if not row["nr"] or not row["nc"]:
        return None
    return EcdfDistances(
        int(row["nr"]),
        int(row["nc"]),
        float(row["w"]),
        float(row["d"]),
        int(row["ref_below"]),
        int(row["cur_below"]),
    )


def query_distances(store: Store, sql: str, params: dict[str, Any]) -> EcdfDistances | None:
    """Run an ``ecdf_query``; ``None`` when either side is empty."""
    rows = store.query(sql, params).to_pylist()
    return _distances(rows[0]) if rows else None


def _groups(sizes: Sequence[tuple[str, int]], budget: int) -> list[list[str]]:
    groups: list[list[str]] = []
    held = budget
    for name, size in sizes:
        if not groups or held + size > budget:
            groups.append([])
            held = 0
        groups[-1].append(name)
        held += size
    return groups


def ecdf_distances(
    store: Store,
    window: Window,
    baseline_id: str,
    features: Sequence[str],
    sizes: dict[str, int] | None = None,
    budget: int = DEFAULT_BUDGET,
) -> dict[str, EcdfDistances]:
    """W1 and KS ``D`` per numeric feature between the baseline and the window.

    Features are queried together while their values (``sizes``: an upper bound of both sides'
    count per feature) fit ``budget``; the array work runs on one core per query, so fewer,
    larger queries are faster, and the budget bounds the memory. A feature alone reads its one
    map key instead of unnesting the map. Features missing on either side are left out.
    """
    out: dict[str, EcdfDistances] = {}
    sizes = sizes or {}
    for group in _groups([(n, sizes.get(n, budget)) for n in features], budget):
        if len(group) == 1:
            params = {**window.params(), "b": baseline_id, "f": group[0]}
            found = query_distances(store, _QUERY, params)
            if found is not None:
                out[group[0]] = found
            continue
        params = {**window.params(), "b": baseline_id, "names": list(group)}
        for row in store.query(_GROUPED, params).to_pylist():
            found = _distances(row)
            if found is not None:
                out[str(row["feature"])] = found
    return out
