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

Memory is one feature's values (both sides) at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keelwatch.store import Store

from ._sql import CURRENT_ONE, REFERENCE_ONE, Window

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


def ecdf_query(reference: str, current: str) -> str:
    """The ECDF query over two ``x`` sources (constant SQL fragments, never user input)."""
    return f"""
SELECT nr, nc, w, d, cr[i] AS ref_below, i - cr[i] AS cur_below FROM (
 SELECT nr, nc,
  arrayPushBack(arrayPopFront(arrayDifference(xs)), 0.) AS dx,
  arrayCumSum(ss) AS cr,
  arrayMap((r, j) -> abs(r / nr - (j - r) / nc), cr, arrayEnumerate(cr)) AS gap,
  arraySum((g, t) -> g * t, gap, dx) AS w,
  arrayMax((g, t) -> if(t != 0, g, 0.), gap, dx) AS d,
  arrayFirstIndex((g, t) -> t != 0 AND g = d, gap, dx) AS i FROM (
  SELECT arraySort(groupArray(x)) AS xs,
   arraySort((s, v) -> v, groupArray(s), groupArray(x)) AS ss,
   toUInt64(sum(s)) AS nr, count() - nr AS nc
  FROM (
   SELECT x, toUInt8(1) AS s FROM ({reference})
   UNION ALL SELECT x, toUInt8(0) AS s FROM ({current})
  )
 )
)
"""


_QUERY = ecdf_query(REFERENCE_ONE, CURRENT_ONE)


def query_distances(store: Store, sql: str, params: dict[str, Any]) -> EcdfDistances | None:
    """Run an ``ecdf_query``; ``None`` when either side is empty."""
    rows = store.query(sql, params).to_pylist()
    if not rows or not rows[0]["nr"] or not rows[0]["nc"]:
        return None
    row = rows[0]
    return EcdfDistances(
        int(row["nr"]),
        int(row["nc"]),
        float(row["w"]),
        float(row["d"]),
        int(row["ref_below"]),
        int(row["cur_below"]),
    )


def ecdf_distances(
    store: Store, window: Window, baseline_id: str, features: Sequence[str]
) -> dict[str, EcdfDistances]:
    """W1 and KS ``D`` per numeric feature between the baseline and the window.

    One query per feature, holding that feature's values of both sides in the engine; features
    missing on either side are left out of the result.
    """
    out: dict[str, EcdfDistances] = {}
    for name in features:
        found = query_distances(store, _QUERY, {**window.params(), "b": baseline_id, "f": name})
        if found is not None:
            out[name] = found
    return out
