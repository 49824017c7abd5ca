"""The SQL that aggregates a feature's values in the store, for the current window and baseline.

Values of the current window come from ``predictions`` (a model, a time window, optionally a
version and a deployment slot); reference values from ``baseline_rows``. Only counts and a few
sums leave the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from keelwatch.store import Store

__all__ = [
    "Window",
    "bin_counts",
    "category_counts",
    "numeric_summary",
    "wasserstein",
    "window_count",
]


@dataclass(frozen=True)
class Window:
    """Which predictions a detector looks at."""

    model: str
    start: datetime
    end: datetime
    project: str = "default"
    version: str = ""
    slot: str = ""

    def params(self) -> dict[str, Any]:
        return {
            "p": self.project,
            "m": self.model,
            "t0": self.start.timestamp(),
            "t1": self.end.timestamp(),
            "ver": self.version,
            "slot": self.slot,
        }


_CURRENT = (
    "SELECT {col} FROM predictions WHERE project = {{p:String}} AND model = {{m:String}} "
    "AND ts >= fromUnixTimestamp64Micro(toInt64({{t0:Float64}} * 1e6), 'UTC') "
    "AND ts < fromUnixTimestamp64Micro(toInt64({{t1:Float64}} * 1e6), 'UTC') "
    "AND ({{ver:String}} = '' OR version = {{ver:String}}) "
    "AND ({{slot:String}} = '' OR slot = {{slot:String}})"
)
_NUM_CUR = _CURRENT.format(col="num[{f:String}] AS x") + " AND mapContains(num, {f:String})"
_CAT_CUR = _CURRENT.format(col="cat[{f:String}] AS x") + " AND mapContains(cat, {f:String})"
_NUM_REF = (
    "SELECT num[{f:String}] AS x FROM baseline_rows "
    "WHERE baseline_id = {b:String} AND mapContains(num, {f:String})"
)
_CAT_REF = (
    "SELECT cat[{f:String}] AS x FROM baseline_rows "
    "WHERE baseline_id = {b:String} AND mapContains(cat, {f:String})"
)


def window_count(store: Store, window: Window) -> int:
    """Predictions in the window."""
    rows = store.query(_CURRENT.format(col="count() AS n"), window.params()).to_pylist()
    return int(rows[0]["n"])


def numeric_summary(store: Store, window: Window, feature: str) -> tuple[int, float, float]:
    """Count, min and max of a numeric feature in the window."""
    row = store.query(
        f"SELECT count() AS n, min(x) AS lo, max(x) AS hi FROM ({_NUM_CUR})",
        {**window.params(), "f": feature},
    ).to_pylist()[0]
    return int(row["n"]), float(row["lo"] or 0.0), float(row["hi"] or 0.0)


def bin_counts(store: Store, window: Window, feature: str, edges: np.ndarray) -> np.ndarray:
    """Counts of the window's values in ``edges``' bins (half-open, the last closed; values
    outside the edges fall in the first or last bin)."""
    rows = store.query(
        f"SELECT arrayCount(e -> e <= x, {{inner:Array(Float64)}}) AS bin, count() AS c "
        f"FROM ({_NUM_CUR}) GROUP BY bin",
        {**window.params(), "f": feature, "inner": [float(e) for e in edges[1:-1]]},
    ).to_pylist()
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for row in rows:
        counts[int(row["bin"])] = int(row["c"])
    return counts


def category_counts(store: Store, window: Window, feature: str) -> dict[str, int]:
    """Counts of each category of a categorical feature in the window."""
    rows = store.query(
        f"SELECT x, count() AS c FROM ({_CAT_CUR}) GROUP BY x", {**window.params(), "f": feature}
    ).to_pylist()
    return {str(r["x"]): int(r["c"]) for r in rows}


def wasserstein(
    store: Store, window: Window, feature: str, baseline_id: str
) -> tuple[float, int, int]:
    """Exact first Wasserstein distance between the baseline's and the window's values.

    ``W1 = Σ_i |F_ref(x_i) − F_cur(x_i)| · (x_{i+1} − x_i)`` over the sorted union of values,
    with both empirical CDFs built by window sums in one query. Returns (W1, n_ref, n_cur).
    """
    params = {**window.params(), "f": feature, "b": baseline_id}
    row = store.query(
        "SELECT sum(abs(cr / nr - cc / nc) * dx) AS w, any(nr) AS n_ref, any(nc) AS n_cur FROM ("
        " SELECT x, sum(r) OVER w AS cr, sum(c) OVER w AS cc,"
        "  sum(r) OVER () AS nr, sum(c) OVER () AS nc,"
        "  leadInFrame(x) OVER (ORDER BY x ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) - x AS dx"
        " FROM (SELECT x, sum(r) AS r, sum(c) AS c FROM ("
        f"  SELECT x, 1 AS r, 0 AS c FROM ({_NUM_REF}) UNION ALL SELECT x, 0, 1 FROM ({_NUM_CUR})"
        " ) GROUP BY x)"
        " WINDOW w AS (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        ")",
        params,
    ).to_pylist()[0]
    n_ref, n_cur = int(row["n_ref"] or 0), int(row["n_cur"] or 0)
    if n_ref == 0 or n_cur == 0:
        return float("nan"), n_ref, n_cur
    return float(row["w"]), n_ref, n_cur
