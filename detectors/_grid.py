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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keelwatch.store import Store

from ._baseline import FeatureProfile
from ._ecdf import EcdfDistances
from ._sql import CURRENT_NUM, REFERENCE_NUM, Window, names_param

__all__ = ["DEFAULT_GRID_BINS", "GridCounts", "grid_counts"]

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


def _grid(profile: FeatureProfile, bins: int) -> tuple[float, float, int, int]:
    """(lo, hi, cells, cells per Sturges bin) of a numeric baseline feature."""
    edges = profile.edges
    k = max(len(edges) - 1, 1)
    per_bin = max(1, math.ceil(bins / k))
    lo = float(edges[0]) if edges else float(profile.min or 0.0)
    hi = float(edges[-1]) if edges else float(profile.max or 0.0)
    return lo, hi, k * per_bin, per_bin


def _cells(
    store: Store,
    source: str,
    params: dict[str, Any],
    grids: dict[str, tuple[float, float, int, int]],
) -> dict[str, tuple[np.ndarray, int, int, float]]:
    """Per feature: cell counts, counts below and above the range, summed distance outside."""
    names = list(grids)
    table = store.query(
        _CELLS.replace("{source}", source),
        {
            **params,
            "names": names_param(names),
            "lo": [grids[n][0] for n in names],
            "hi": [grids[n][1] for n in names],
            "scale": [
                g[2] / (g[1] - g[0]) if g[1] > g[0] else 0.0 for g in map(grids.__getitem__, names)
            ],
            "cells": [grids[n][2] for n in names],
            "end": max(g[2] for g in grids.values()) + 1,
        },
    )
    out = {}
    for name, cells, outside in zip(
        table.column("feature").to_pylist(),
        table.column("cells").to_pylist(),
        table.column("outside").to_pylist(),
        strict=True,
    ):
        g = grids[str(name)][2]
        counts = np.asarray(cells, dtype=np.int64)  # index 0 is cell -1
        out[str(name)] = (counts[1 : g + 1], int(counts[0]), int(counts[g + 1]), float(outside))
    return out


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
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    grids = {p.name: _grid(p, bins) for p in features if p.kind == "numeric" and p.count}
    if not grids:
        return {}
    params = {**window.params(), "b": baseline_id}
    ref = _cells(store, REFERENCE_NUM, params, grids)
    cur = _cells(store, CURRENT_NUM, params, grids)
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
    return out
