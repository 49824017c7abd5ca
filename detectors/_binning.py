"""Bin edges of the binned drift methods (PSI, KL, Jensen-Shannon, Hellinger), per convention.

- ``keelwatch``: the baseline's own Sturges bins (stored with the profile); current values
  outside them are counted in the first or last bin. Nothing but the window is read.
- ``evidently`` (0.7 ``get_binned_data``): for numeric features with more than 20 distinct
  reference values, ``np.histogram_bin_edges(concat(ref, cur), "sturges")``: ``k =
  ceil(ptp / (ptp / (log2(n_ref + n_cur) + 1)))`` equal bins from the union's min to its max, so
  only the counts, minima and maxima of both sides are needed; both sides are then counted into
  those bins as ``np.histogram`` does (half-open, last bin closed). Otherwise one bin per value
  (the union of both sides' values). Hellinger (numeric) instead takes Sturges bins over the
  distinct values of both sides (``n`` = number of distinct values).
- ``nannyml``: ``np.histogram_bin_edges(ref, "doane")``: ``k = ceil(ptp / w)``, ``w = ptp /
  (1 + log2 n + log2(1 + |g1| / σ_g1))`` with population skewness ``g1`` and ``σ_g1 =
  sqrt(6 (n − 2) / ((n + 1)(n + 3)))``, over the reference range; current mass outside that
  range goes to one extra bin whose reference probability is 0.

numpy forces integer-typed data to bins at least 1 wide; the store keeps numeric features as
``Float64``, so keelwatch follows numpy's float path (a difference only for integer columns whose
Sturges width would be below 1).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["doane_edges", "equal_edges", "sturges_edges"]


def equal_edges(lo: float, hi: float, width: float) -> np.ndarray:
    """numpy's equal-width edges for an estimated bin ``width`` over ``[lo, hi]``."""
    if hi <= lo:
        return np.array([lo - 0.5, hi + 0.5])
    bins = int(np.ceil((hi - lo) / width)) if width else 1
    return np.linspace(lo, hi, bins + 1)


def sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """``np.histogram_bin_edges(a, "sturges")`` for ``n`` values ranging over ``[lo, hi]``."""
    if n <= 0:
        raise ValueError("n must be positive")
    return equal_edges(lo, hi, (hi - lo) / (np.log2(n) + 1.0))


def doane_edges(lo: float, hi: float, n: int, std: float, skew: float) -> np.ndarray:
    """``np.histogram_bin_edges(a, "doane")`` from ``a``'s count, range, std and skewness."""
    if n <= 0:
        raise ValueError("n must be positive")
    width = 0.0
    if n > 2 and std > 0.0:
        sg1 = math.sqrt(6.0 * (n - 2) / ((n + 1.0) * (n + 3)))
        width = (hi - lo) / (1.0 + np.log2(n) + np.log2(1.0 + abs(skew) / sg1))
    return equal_edges(lo, hi, width)
