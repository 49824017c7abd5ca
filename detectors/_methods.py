"""Drift scores from small arrays (bin counts, category counts), with the peers' exact formulas.

Every method here takes counts that ClickHouse aggregated; only these few numbers reach Python.

- PSI: ``Σ (r − c) · ln(r / c)`` over bin proportions ``r`` (reference) and ``c`` (current). Zero
  proportions are filled per side as Evidently does: if the smallest non-zero proportion is at
  most 1e-4, zeros become that value / 1e6, else 1e-4. Natural log. Drift when PSI >= 0.1.
- Jensen-Shannon distance: ``sqrt((KL(r‖m) + KL(c‖m)) / 2)``, ``m = (r + c) / 2``, natural log,
  no zero fill (so at most sqrt(ln 2) ≈ 0.8326), as ``scipy.spatial.distance.jensenshannon``.
  Drift when >= 0.1.
- Chi-square: observed current counts against expected ``reference counts · n_cur / n_ref`` over
  the union of categories; p-value from the chi-square distribution with ``k − 1`` degrees of
  freedom. A category unseen in the reference makes the statistic infinite (p = 0). Drift when
  p < 0.05.
- Wasserstein (normed): computed exactly in SQL (see ``_sql``), divided by the reference's
  population standard deviation (floored at 0.001). Drift when >= 0.1.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["chi_square", "fill_zeros", "jensen_shannon", "psi"]


def fill_zeros(proportions: np.ndarray) -> np.ndarray:
    """Evidently's zero-bin fill for PSI and KL."""
    out = np.asarray(proportions, dtype=float).copy()
    nonzero = out[out > 0]
    if nonzero.size == 0:
        return out
    smallest = nonzero.min()
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count (or proportion) vectors over the same bins."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0:
        return float("nan")
    r = fill_zeros(ref / ref.sum())
    c = fill_zeros(cur / cur.sum())
    return float(np.sum((r - c) * np.log(r / c)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray, base: float | None = None) -> float:
    """Jensen-Shannon distance of two count vectors (natural log unless ``base`` is given)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0:
        return float("nan")
    p = ref / ref.sum()
    q = cur / cur.sum()
    m = (p + q) / 2.0

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    divergence = (kl(p) + kl(q)) / 2.0
    if base is not None:
        divergence /= np.log(base)
    return float(np.sqrt(max(divergence, 0.0)))


def chi_square(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square statistic and p-value of current counts against reference-scaled expectations."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0 or ref.size < 2:
        return float("nan"), float("nan")
    expected = ref * cur.sum() / ref.sum()
    if np.any((expected == 0) & (cur > 0)):
        return float("inf"), 0.0
    keep = expected > 0
    statistic = float(np.sum((cur[keep] - expected[keep]) ** 2 / expected[keep]))
    return statistic, float(stats.chi2.sf(statistic, int(keep.sum()) - 1))
