"""Histogram counts in SQL, exactly as ``np.histogram`` with the same explicit edges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keelwatch.store import Store

from ._sql import CURRENT_NUM, CURRENT_ONE, REFERENCE_NUM, REFERENCE_ONE, names_param

__all__ = ["histograms", "linspace_step"]

#: Equal-width bins of every feature in one pass: the bin is guessed from ``(x − lo) / step``
#: and corrected by one against the edges ``i·step + lo``, computed as ``np.linspace`` computes
#: them, so the counts are those of comparisons with the stored edges. The per-feature
#: parameters come through ``transform`` on the LowCardinality key (decided per dictionary
#: entry); each feature's counts go to one dense array (index 0 above the range, 1 below it,
#: then the bins), and every branch is computed for every value: both about twice as fast at
#: 1M x 20 as ``GROUP BY feature, bin`` and a lazily evaluated ``multiIf``.
_EQUAL_BINS = """
SELECT feature, countResample(-2, {end:Int64}, 1)(b, b) AS counts FROM (
 SELECT feature, x,
  transform(feature, {names:Array(String)}, {lo:Array(Float64)}, 0.) AS lo,
  transform(feature, {names:Array(String)}, {hi:Array(Float64)}, 0.) AS hi,
  transform(feature, {names:Array(String)}, {step:Array(Float64)}, 1.) AS step,
  transform(feature, {names:Array(String)}, {k:Array(Int64)}, toInt64(1)) AS k,
  toInt64(least(greatest(floor((x - lo) / step), 0.), toFloat64(k - 1))) AS g,
  if(x < lo, -1, if(x > hi, -2,
   g - (g > 0 AND x < g * step + lo) + (g + 1 < k AND x >= (g + 1) * step + lo))) AS b
 FROM ({source})
) GROUP BY feature
SETTINGS short_circuit_function_evaluation = 'disable'
"""
#: The grouped source of each one-feature source (``{names}`` instead of ``{f}``).
_GROUPED = {CURRENT_ONE: CURRENT_NUM, REFERENCE_ONE: REFERENCE_NUM}


def linspace_step(edges: np.ndarray | Sequence[float]) -> float | None:
    """The step of edges made as ``np.linspace`` makes them (``i·step + lo``, the last ``hi``),
    or ``None``."""
    e = np.asarray(edges, dtype=float)
    k = e.size - 1
    if k < 1 or not np.isfinite(e).all() or e[-1] <= e[0]:
        return None
    step = (e[-1] - e[0]) / k
    expected = np.arange(k + 1) * step + e[0]
    expected[-1] = e[-1]
    return float(step) if np.array_equal(expected, e) else None


def _bins(rows: list[dict[str, Any]], k: int) -> tuple[np.ndarray, int, int]:
    counts = np.zeros(k, dtype=np.int64)
    below = above = 0
    for row in rows:
        b, c = int(row["b"]), int(row["c"])
        if b == -1:
            below = c
        elif b == -2:
            above = c
        else:
            counts[b] = c
    return counts, below, above


def histograms(
    store: Store, source: str, params: Mapping[str, Any], edges: Mapping[str, np.ndarray]
) -> dict[str, tuple[np.ndarray, int, int]]:
    """Counts per bin of each feature's ``edges``, and the counts below and above them.

    ``source`` is ``CURRENT_ONE`` or ``REFERENCE_ONE``. Bins are half-open ``[e_i, e_{i+1})``
    with the last one closed, exactly as ``np.histogram`` with explicit edges assigns values
    (IEEE comparisons on the same doubles). Features whose edges are equal-width as
    ``np.linspace`` makes them (Sturges, Doane) are counted together in one read of the
    window's maps; others (quantile bins) one query each, with a constant edge array (far
    cheaper than picking each row's edges out of a nested array). At 1M rows x 20 features the
    one pass took 0.8 s against 3.8 s for one query per feature, each decoding the whole map.
    """
    steps = {name: linspace_step(e) for name, e in edges.items()}
    equal = [name for name, step in steps.items() if step is not None]
    out = {}
    if equal:
        bins = [len(edges[n]) - 1 for n in equal]
        rows = store.query(
            _EQUAL_BINS.replace("{source}", _GROUPED[source]),
            {
                **params,
                "names": names_param(equal),
                "lo": [float(edges[n][0]) for n in equal],
                "hi": [float(edges[n][-1]) for n in equal],
                "step": [steps[n] for n in equal],
                "k": bins,
                "end": max(bins),
            },
        ).to_pylist()
        found = {str(r["feature"]): np.asarray(r["counts"], dtype=np.int64) for r in rows}
        for name, k in zip(equal, bins, strict=True):
            counts = found.get(name, np.zeros(k + 2, dtype=np.int64))
            out[name] = counts[2 : k + 2].copy(), int(counts[1]), int(counts[0])
    for name, feature_edges in edges.items():
        if name in out:
            continue
        e = [float(v) for v in feature_edges]
        rows = store.query(
            "SELECT multiIf(x < {lo:Float64}, -1, x > {hi:Float64}, -2, "
            "toInt64(arrayCount(t -> t <= x, {inner:Array(Float64)}))) AS b, count() AS c "
            f"FROM ({source}) GROUP BY b",
            {**params, "f": name, "lo": e[0], "hi": e[-1], "inner": e[1:-1]},
        ).to_pylist()
        out[name] = _bins(rows, len(e) - 1)
    return out
