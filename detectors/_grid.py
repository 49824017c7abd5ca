"""Numeric drift of large windows from fine histograms: one pass, memory independent of rows.

The exact ECDF queries (``_ecdf``) sort every value of a feature; past a few million rows per
window that dominates the run (a sort per feature, its values held at once). Above
``DriftConfig.exact_max_rows`` the run instead counts each side on a fine grid in one
``ARRAY JOIN`` pass over all features (``GROUP BY feature, cell``) and derives every numeric
method from those counts:

- the grid of a feature is its baseline's range ``[lo, hi]`` (the first and last stored bin edge)
  cut into ``G = k·S`` equal cells, ``k`` the baseline's Sturges bins and ``S = ⌈bins / k⌉``
  (``bins`` = ``DriftConfig.grid_bins``, 10,000 by default, as NannyML uses above 10,000 rows), so
  the grid refines the Sturges bins; a value's cell is ``min(⌊(x − lo)·G / (hi − lo)⌋, G − 1)``,
  values below ``lo`` or above ``hi`` are counted apart, with the sum of their distances to the
  range (``Σ (lo − x) + Σ (x − hi)``);
- binned methods (PSI, KL, JS, Hellinger, chi-square, Z) use the Sturges bins as sums of ``S``
  cells, current values outside the range in the first or last bin, as the exact path does;
- ``W1 = Σ_below (lo − y)/m + Σ_above (y − hi)/m + Σ_cells w·(|D(e_j)| + |D(e_{j+1})|)/2`` with
  ``D = F_ref − F_cur`` at the cell edges (trapezoid rule inside ``[lo, hi]``, exact outside).
  Inside a cell ``D`` moves by at most the cell's two masses ``p_j + q_j``, so the error is at
  most ``w·Σ_j (p_j + q_j) ≤ 2w``: with the default grid, 2/10,000 of the baseline's range
  (``GridCounts.w1_error_bound``, before norming by the reference standard deviation);
- KS ``D`` is the largest ``|D|`` over the cell edges (a lower bound of the exact statistic,
  short of it by at most the largest cell mass), its p-value from the counts at that edge.

The baseline's counts are read from ``baseline_values`` on a baseline's first run with a grid
size and kept in ``baseline_grid``; later runs read only the window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from keelwatch.store import Store, StoreError

from ._baseline import FeatureProfile
from ._ecdf import EcdfDistances
from ._sql import CURRENT_NUM, REFERENCE_NUM, WHERE_WINDOW, Window, names_param, window_count
from ._values import KeyValues, usual_layout

__all__ = ["DEFAULT_GRID_BINS", "GridCounts", "GridPass", "grid_counts", "grid_pass"]

_log = logging.getLogger(__name__)

DEFAULT_GRID_BINS = 10_000

# Per-feature grid parameters are looked up with transform() (a hash lookup per value, on the
# key dictionary), far cheaper than indexOf() over the names. Counting with countResample into a
# dense array per feature (cell -1 = below the range, cell G = above) is about twice as fast as
# GROUP BY feature, cell over a million groups.
_CELLS = """
SELECT feature, countResample(-1, {end:Int64}, 1)(cell, cell) AS cells, sum(d) AS outside FROM (
 SELECT feature, x,
  transform(feature, {names:Array(String)}, {lo:Array(Float64)}, 0.) AS lo,
  transform(feature, {names:Array(String)}, {hi:Array(Float64)}, 0.) AS hi,
  transform(feature, {names:Array(String)}, {scale:Array(Float64)}, 0.) AS scale,
  transform(feature, {names:Array(String)}, {cells:Array(Int64)}, toInt64(0)) AS g,
  multiIf(x < lo, toInt64(-1), x > hi, g, least(toInt64(floor((x - lo) * scale)), g - 1)) AS cell,
  multiIf(x < lo, lo - x, x > hi, x - hi, 0.) AS d
 FROM ({source})
) GROUP BY feature
"""

# The window's rows whose feature map has its usual layout (the same keys in the same order, as
# one model's calls send them) are counted position by position on the map's value array, one
# countResample per position (-ForEach): no ARRAY JOIN and no per-value lookup, about 3x faster
# at 100 features. Rows with another layout, if any, go through _CELLS. Non-finite values get
# cell -2, outside the counted range, as the general query drops them. The same pass also
# returns what data quality counts per key (distinct up to 2, one value; see _values).
_BY_POSITION = f"""
SELECT countResampleForEach(-1, {{end:Int64}}, 1)(cells, cells) AS cells,
 sumForEach(d) AS outside, count() AS n, uniqUpToForEach(1)(xs) AS u, anyForEach(xs) AS one FROM (
 SELECT num.values AS xs,
  arrayMap((x, lo, hi, scale, g) -> if(isFinite(x),
   least(greatest(toInt64(floor((x - lo) * scale)), -1), g - 1) + (x > hi), -2),
   xs, {{lo:Array(Float64)}}, {{hi:Array(Float64)}}, {{scale:Array(Float64)}},
   {{cells:Array(Int64)}}) AS cells,
  arrayMap((x, lo, hi) -> if(isFinite(x), greatest(lo - x, 0.) + greatest(x - hi, 0.), 0.),
   xs, {{lo:Array(Float64)}}, {{hi:Array(Float64)}}) AS d
 FROM predictions WHERE {WHERE_WINDOW} AND num.keys = {{layout:Array(String)}}
)
"""
_OTHER_LAYOUTS = CURRENT_NUM + " AND num.keys != {layout:Array(String)}"

Grid = tuple[float, float, int, int]
Cells = tuple[np.ndarray, int, int, float]


@dataclass(frozen=True)
class GridCounts:
    """One feature's counts on its fine grid, both sides; ``S`` cells per Sturges bin."""

    lo: float
    hi: float
    per_bin: int
    reference: np.ndarray
    current: np.ndarray
    current_below: int
    current_above: int
    #: Σ (lo − y) over current values below the range plus Σ (y − hi) over those above it.
    outside_distance: float

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.reference.size

    @property
    def n_reference(self) -> int:
        return int(self.reference.sum())

    @property
    def n_current(self) -> int:
        return int(self.current.sum()) + self.current_below + self.current_above

    @property
    def w1_error_bound(self) -> float:
        """Largest possible difference between the grid's W1 and the exact one."""
        if not self.n_reference or not self.n_current:
            return 0.0
        masses = self.reference / self.n_reference + self.current / self.n_current
        return float(self.width * masses.sum())

    def binned(self) -> tuple[np.ndarray, np.ndarray]:
        """(reference, current) counts on the baseline's Sturges bins, outliers in the end bins."""
        ref = self.reference.reshape(-1, self.per_bin).sum(axis=1).astype(float)
        cur = self.current.reshape(-1, self.per_bin).sum(axis=1).astype(float)
        cur[0] += self.current_below
        cur[-1] += self.current_above
        return ref, cur

    def distances(self, ks: bool) -> EcdfDistances | None:
        """W1 and, with ``ks``, the KS statistic from the grid (``None`` if a side is empty)."""
        n, m = self.n_reference, self.n_current
        if not n or not m:
            return None
        # ECDFs at the edges e_0 = lo ... e_G = hi; the current's includes the values below lo.
        ref_below = np.concatenate(([0], np.cumsum(self.reference)))
        ref_cdf = ref_below / n
        cur_below = self.current_below + np.concatenate(([0], np.cumsum(self.current)))
        gap = np.abs(ref_cdf - cur_below / m)
        inside = float(self.width * (gap[:-1] + gap[1:]).sum() / 2.0)
        w1 = self.outside_distance / m + inside
        if not ks:
            return EcdfDistances(n, m, w1)
        # Just below lo the reference's ECDF is 0 and the current's is below/m.
        candidates = np.concatenate(([self.current_below / m], gap))
        i = int(np.argmax(candidates))
        if i == 0:
            return EcdfDistances(n, m, w1, float(candidates[0]), 0, self.current_below)
        at = i - 1
        return EcdfDistances(n, m, w1, float(candidates[i]), int(ref_below[at]), int(cur_below[at]))


def _grid(profile: FeatureProfile, bins: int) -> Grid:
    """(lo, hi, cells, cells per Sturges bin) of a numeric baseline feature."""
    edges = profile.edges
    k = max(len(edges) - 1, 1)
    per_bin = max(1, math.ceil(bins / k))
    lo = float(edges[0]) if edges else float(profile.min or 0.0)
    hi = float(edges[-1]) if edges else float(profile.max or 0.0)
    return lo, hi, k * per_bin, per_bin


def _grid_params(names: Sequence[str], grids: dict[str, Grid]) -> dict[str, Any]:
    """Per-name grid parameters; names without a grid get a dummy one (their counts unused)."""
    dummy = (0.0, 0.0, 1, 1)
    chosen = [grids.get(n, dummy) for n in names]
    return {
        "lo": [g[0] for g in chosen],
        "hi": [g[1] for g in chosen],
        "scale": [g[2] / (g[1] - g[0]) if g[1] > g[0] else 0.0 for g in chosen],
        "cells": [g[2] for g in chosen],
        "end": max(g[2] for g in grids.values()) + 1,
    }


def _split(counts: np.ndarray, g: int, outside: float) -> Cells:
    """(cells, below, above, outside distance) from a -1..end count array (index 0 is cell -1)."""
    return counts[1 : g + 1], int(counts[0]), int(counts[g + 1]), float(outside)


def _add(a: Cells | None, b: Cells) -> Cells:
    if a is None:
        return b
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def _cells(
    store: Store, source: str, params: dict[str, Any], grids: dict[str, Grid]
) -> dict[str, Cells]:
    """Per feature: cell counts, counts below and above the range, summed distance outside."""
    names = list(grids)
    table = store.query(
        _CELLS.replace("{source}", source),
        {**params, "names": names_param(names), **_grid_params(names, grids)},
    )
    out = {}
    for name, cells, outside in zip(
        table.column("feature").to_pylist(),
        table.column("cells").to_pylist(),
        table.column("outside").to_pylist(),
        strict=True,
    ):
        counts = np.asarray(cells, dtype=np.int64)
        out[str(name)] = _split(counts, grids[str(name)][2], outside)
    return out


_STORED = (
    "SELECT feature, cells, below, above, outside FROM baseline_grid "
    "WHERE baseline_id = {b:String} AND bins = {bins:UInt32} AND feature IN {names:Array(String)} "
    "LIMIT 1 BY feature"
)


def _reference_cells(
    store: Store, params: dict[str, Any], grids: dict[str, Grid], bins: int
) -> dict[str, Cells]:
    """The baseline's cells: stored ones (``baseline_grid``), the rest counted from
    ``baseline_values`` and stored for the next run. A baseline never changes, so its counts on
    a grid of ``bins`` cells are those of its first run."""
    found = store.query(_STORED, {**params, "bins": bins, "names": names_param(list(grids))})
    out: dict[str, Cells] = {}
    for row in found.to_pylist():
        name = str(row["feature"])
        cells = np.asarray(row["cells"], dtype=np.int64)
        if name in grids and cells.size == grids[name][2]:
            out[name] = cells, int(row["below"]), int(row["above"]), float(row["outside"])
    missing = {name: grid for name, grid in grids.items() if name not in out}
    if not missing:
        return out
    counted = _cells(store, REFERENCE_NUM, params, missing)
    out.update(counted)
    if counted:
        names = list(counted)
        table = pa.table(
            {
                "baseline_id": [params["b"]] * len(names),
                "bins": pa.array([bins] * len(names), pa.uint32()),
                "feature": names,
                "cells": pa.array([counted[n][0] for n in names], pa.list_(pa.uint64())),
                "below": pa.array([counted[n][1] for n in names], pa.uint64()),
                "above": pa.array([counted[n][2] for n in names], pa.uint64()),
                "outside": pa.array([counted[n][3] for n in names], pa.float64()),
            }
        )
        try:
            store.insert("baseline_grid", table)
        except StoreError as exc:  # a store this run may only read: count again next time
            _log.warning("baseline grid counts not stored: %s", exc)
    return out


def _key_values(
    row: dict[str, Any],
    counts: list[np.ndarray],
    layout: list[str],
    grids: dict[str, Grid],
    ranges: dict[str, tuple],
) -> dict[str, KeyValues] | None:
    """Data quality's per-key counts from the grid pass (every window row in the usual layout),
    or ``None`` where a feature's grid range is not its baseline ``[min, max]``."""
    out = {}
    for i, name in enumerate(layout):
        outside = 0
        if name in grids:
            lo, hi, g, _ = grids[name]
            if ranges.get(name) != (lo, hi):
                return None
            outside = int(counts[i][0] + counts[i][g + 1])
        one = row["one"][i]
        out[name] = KeyValues(
            int(row["n"]),
            int(counts[i].sum()),
            outside,
            int(row["u"][i]),
            None if one is None else float(one),
        )
    return out


def _current_cells(
    store: Store,
    window: Window,
    params: dict[str, Any],
    grids: dict[str, Grid],
    ranges: dict[str, tuple],
) -> tuple[dict[str, Cells], dict[str, KeyValues] | None]:
    """The window's cells (rows of the usual map layout by position, any others in general),
    and data quality's per-key counts when the usual layout was every row."""
    layout = usual_layout(store, window.params())
    if layout is None:
        return {}, {}
    by_position = {**params, "layout": layout, **_grid_params(layout, grids)}
    row = store.query(_BY_POSITION, by_position).to_pylist()[0]
    out: dict[str, Cells] = {}
    n = int(row["n"])
    counts = [np.asarray(c, dtype=np.int64) for c in row["cells"]] if n else []
    for i, name in enumerate(layout if n else ()):
        if name in grids:
            out[name] = _split(counts[i], grids[name][2], row["outside"][i])
    if n == window_count(store, window):
        return out, _key_values(row, counts, layout, grids, ranges) if n else {}
    other = _cells(store, _OTHER_LAYOUTS, {**params, "layout": layout}, grids)
    for name, found in other.items():
        out[name] = _add(out.get(name), found)
    return out, None


class GridPass(NamedTuple):
    """Both sides' fine-grid counts per feature, and what data quality counts per key of the
    window's numeric maps (``None`` unless every row had the usual layout)."""

    counts: dict[str, GridCounts]
    values: dict[str, KeyValues] | None


def grid_counts(
    store: Store,
    window: Window,
    baseline_id: str,
    features: Sequence[FeatureProfile],
    bins: int = DEFAULT_GRID_BINS,
) -> dict[str, GridCounts]:
    """Fine-grid counts of each numeric ``features`` on both sides, two one-pass queries.

    Features missing on either side are left out.
    """
    return grid_pass(store, window, baseline_id, features, bins).counts


def grid_pass(
    store: Store,
    window: Window,
    baseline_id: str,
    features: Sequence[FeatureProfile],
    bins: int = DEFAULT_GRID_BINS,
) -> GridPass:
    """:func:`grid_counts`, with data quality's per-key counts from the window's pass."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    grids = {p.name: _grid(p, bins) for p in features if p.kind == "numeric" and p.count}
    if not grids:
        return GridPass({}, None)
    params = {**window.params(), "b": baseline_id}
    ranges = {p.name: (p.min, p.max) for p in features if p.kind == "numeric"}
    ref = _reference_cells(store, params, grids, bins)
    cur, values = _current_cells(store, window, params, grids, ranges)
    out = {}
    for name, (lo, hi, _, per_bin) in grids.items():
        if name not in ref or name not in cur:
            continue
        r, c = ref[name], cur[name]
        # The grid spans the reference's own range; a profile from other edges could leave a
        # few reference values outside, which go to the end cells.
        reference = r[0].copy()
        reference[0] += r[1]
        reference[-1] += r[2]
        out[name] = GridCounts(lo, hi, per_bin, reference, c[0], c[1], c[2], c[3])
    return GridPass(out, values)
