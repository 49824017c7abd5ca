"""Multiple-testing correction of a run's p-values (one test per feature).

With ``m`` p-value tests at level ``alpha`` and no drift at all, about ``alpha · m`` features
alarm by chance. Adjusted p-values are compared with the same alpha:

- ``bonferroni``: ``min(1, m · p)``; controls the chance of any false alarm (FWER).
- ``bh`` (Benjamini-Hochberg): ``q_(i) = min_{j >= i} min(1, m · p_(j) / j)`` over the sorted
  p-values; controls the expected share of false alarms among alarms (FDR). Same as
  ``scipy.stats.false_discovery_control(p, method="bh")``.
- ``none``: unadjusted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CORRECTIONS", "adjust_p_values"]

CORRECTIONS = ("none", "bonferroni", "bh")


def adjust_p_values(p_values: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values, in the input order."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    out = np.empty(m)
    out[order] = ranked
    return out
